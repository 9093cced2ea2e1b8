"""Preprocess throughput: tokens/s per core on a generated multilingual corpus (or your own)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def measure(docs_per_lang: int = 3000, workers: int = 1, corpus: str | None = None,
            tokenizer_json: str | None = None, work_dir: str | None = None) -> dict:
    from . import synthetic
    from .data.preprocess import preprocess

    work = Path(work_dir or tempfile.mkdtemp(prefix="bench-preprocess-"))
    src = corpus or str(synthetic.write_corpus(work / "corpus", docs_per_lang, layout="parquet"))
    tok = tokenizer_json or str(synthetic.train_tokenizer(work / "tokenizer.json", 400))
    t0 = time.perf_counter()
    m = preprocess([src], tok, work / f"data-{time.time_ns()}", workers=workers)
    wall = time.perf_counter() - t0
    return {"documents": m["documents"], "tokens": m["tokens"], "workers": m["workers"],
            "wall_seconds": round(wall, 2),
            "tokens_per_second_per_core": round(m["tokens"] / wall / m["workers"], 1),
            "tokenize_tokens_per_second_per_worker": m["tokens_per_second_per_worker"]}


if __name__ == "__main__":
    import json

    print(json.dumps(measure(), indent=1))
