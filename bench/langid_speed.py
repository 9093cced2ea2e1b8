"""LID throughput on one core: the whole LID stage path (read Parquet -> stage -> write
Parquet) vs bare `fasttext.predict` over the same texts (same truncation and newline
handling), and datatrove's LanguageFilter when it can run offline.

    python -m bench.langid_speed [--docs N] [--json OUT]      (N scales with BENCH_SCALE)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from babelmill.pipeline.stages.langid import LangIdStage, default_model_path  # noqa: E402
from bench.corpora import udhr_documents  # noqa: E402
from bench.timing import best_of  # noqa: E402


def run_stage_path(stage: LangIdStage, src: Path, dst: Path, batch_size: int) -> None:
    pf = pq.ParquetFile(src)
    writer = None
    for rb in pf.iter_batches(batch_size=batch_size):
        out = stage(rb)
        if writer is None:
            writer = pq.ParquetWriter(dst, out.schema, compression="zstd")
        writer.write_batch(out)
    writer.close()


def datatrove_filter(texts: list[str]) -> tuple[float | None, str]:
    try:
        from datatrove.data import Document
        from datatrove.pipeline.filters import LanguageFilter
        from datatrove.utils import lid as dt_lid
    except Exception as e:  # noqa: BLE001
        return None, f"datatrove not importable: {e}"
    try:
        # FT176LID downloads its model at run time; point it at the local lid.176.ftz instead.
        class LocalFT176(dt_lid.FT176LID):
            @property
            def model(self):
                if getattr(self, "_local_model", None) is None:
                    import fasttext

                    self._local_model = fasttext.load_model(default_model_path())
                return self._local_model

        # datatrove checks for the distribution *name* fasttext-numpy2-wheel; ours is
        # fasttext-numpy2, the same `fasttext` module built for numpy 2: accept it as the stand-in.
        from datatrove.utils import _import_utils

        _orig = _import_utils._is_distribution_available
        _import_utils._is_distribution_available = (
            lambda name: _orig(name) or (name == "fasttext-numpy2-wheel" and _orig("fasttext-numpy2")))
        filt = LanguageFilter(languages=None, language_threshold=0.0)
        filt.model = LocalFT176(languages=None)
        docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
        filt.filter(docs[0])
        secs = best_of(lambda: [filt.filter(d) for d in docs], repeat=1)
        return secs, "datatrove LanguageFilter (FT176 with the local lid.176.ftz)"
    except Exception as e:  # noqa: BLE001
        return None, f"datatrove LanguageFilter could not run offline: {type(e).__name__}: {e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=int(20000 * float(os.environ.get("BENCH_SCALE", "1"))))
    ap.add_argument("--batch-size", type=int, default=2000)
    ap.add_argument("--json")
    args = ap.parse_args()

    docs = udhr_documents(args.docs)
    texts = [t for t, _ in docs]
    stage = LangIdStage()
    stage.ensure_setup()
    model = stage.model
    mc = stage.params.max_chars

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.parquet", Path(tmp) / "out.parquet"
        pq.write_table(pa.table({"id": [str(i) for i in range(len(texts))], "text": pa.array(texts, pa.large_string())}),
                       src, compression="zstd")
        bare = best_of(lambda: model.predict([t[:mc].replace("\n", " ") for t in texts], k=1))
        full = best_of(lambda: run_stage_path(stage, src, dst, args.batch_size))
        rows = pq.read_metadata(dst).num_rows
    assert rows == len(texts)
    dt_secs, dt_note = datatrove_filter(texts[: min(len(texts), 5000)])
    n = len(texts)
    res = {
        "docs": n,
        "avg_chars": round(sum(map(len, texts)) / n, 1),
        "bare_fasttext_docs_per_s": round(n / bare, 1),
        "stage_path_docs_per_s": round(n / full, 1),
        "ratio_stage_vs_bare": round(bare / full, 3),
        "target_ratio": 0.8,
        "datatrove_docs_per_s": round(min(n, 5000) / dt_secs, 1) if dt_secs else None,
        "datatrove_note": dt_note,
    }
    res["headline"] = (f"stage path {res['stage_path_docs_per_s']:.0f} docs/s vs bare fastText "
                       f"{res['bare_fasttext_docs_per_s']:.0f} docs/s = {res['ratio_stage_vs_bare']:.2f}x (target >= 0.8x)")
    print(f"documents: {n} (avg {res['avg_chars']} chars), one core")
    print(f"bare fasttext.predict (k=1)         : {res['bare_fasttext_docs_per_s']:>10.0f} docs/s")
    print(f"LID stage: read Parquet->stage->write: {res['stage_path_docs_per_s']:>10.0f} docs/s")
    print(f"ratio stage/bare                    : {res['ratio_stage_vs_bare']:>10.3f}   (target >= 0.8)")
    if dt_secs:
        print(f"datatrove LanguageFilter            : {res['datatrove_docs_per_s']:>10.0f} docs/s")
    print(f"datatrove: {dt_note}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
