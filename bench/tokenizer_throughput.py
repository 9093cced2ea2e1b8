"""Tokenizer speed: batch-encode throughput on one core and training time.

    python -m bench.tokenizer_throughput [--input data/demo/raw] [--json OUT.json]

bench/tokenizer_speed.py runs this on the UDHR demo corpus (for `make bench`); the measuring
code is its own module because tests and bench/tokenizer_parity.py import `encode_throughput`
without the one-core environment that running a module as a script sets.

One core: TOKENIZERS_PARALLELISM=false makes `encode_batch` run serially (read at each call)
and RAYON_NUM_THREADS=1 (set before `tokenizers` is imported when run as a module) limits the
trainer's thread pool, so the figures are per core and comparable across machines. The encode
corpus is the input's documents repeated to ~BENCH_SCALE x 8 MB of text; best of 3 runs.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # must precede the first `tokenizers` import to bind its thread pool
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.timing import best_of  # noqa: E402


def encode_throughput(tokenizer_json, texts: list[str], batch_size: int = 1024, repeat: int = 3) -> dict:
    """Tokens/s and MB/s of serial batch encoding (one core)."""
    from babelmill.tokenizer.evaluate import load

    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = load(tokenizer_json)
    n_tokens = 0

    def run():
        nonlocal n_tokens
        n_tokens = 0
        for i in range(0, len(texts), batch_size):
            n_tokens += sum(len(e.ids) for e in tok.encode_batch(texts[i : i + batch_size], add_special_tokens=False))

    secs = best_of(run, repeat)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    return {"docs": len(texts), "mb": round(mb, 2), "tokens": n_tokens, "seconds": round(secs, 3),
            "tokens_per_s": round(n_tokens / secs), "mb_per_s": round(mb / secs, 2)}


def bench(inputs: list[str], vocab_size: int = 8000, scale: float = 1.0) -> dict:
    from babelmill.languages import load_registry
    from babelmill.tokenizer.corpus import iter_docs
    from babelmill.tokenizer.train import train

    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, kind, cost_power in [("parity", "parity", None), ("bpe_balanced", "bpe", None),
                                       ("unigram", "unigram", None)]:
            kw = {} if cost_power is None else {"cost_power": cost_power}
            meta = train(inputs, Path(d) / name, vocab_size=vocab_size, kind=kind, resume=False, **kw)
            out[f"train_{name}"] = {"seconds": meta["seconds"], "sample_chars": meta["sample_total_chars"],
                                    "peak_rss_mb": meta["peak_rss_mb"]}
        docs = [doc.text for doc in iter_docs(inputs, set(load_registry().codes))]
        size = sum(len(t.encode()) for t in docs)
        reps = max(1, round(scale * 8e6 / max(size, 1)))
        texts = docs * reps
        for name in ("parity", "bpe_balanced", "unigram"):
            out[f"encode_{name}"] = encode_throughput(Path(d) / name / "tokenizer.json", texts)
    b, p = out["encode_bpe_balanced"], out["encode_parity"]
    out["headline"] = (f"BPE encode {b['tokens_per_s'] / 1e6:.2f} M tokens/s/core ({b['mb_per_s']} MB/s), "
                       f"parity-aware (default) {p['tokens_per_s'] / 1e6:.2f} M tokens/s/core; "
                       f"train {out['train_bpe_balanced']['seconds']['total']} s (HF BPE), "
                       f"{out['train_parity']['seconds']['total']} s (parity-aware) on {len(docs)} docs")
    out["threads"] = {k: os.environ.get(k) for k in ("RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", nargs="+", default=["data/demo/raw"])
    ap.add_argument("--vocab-size", type=int, default=8000)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    res = bench(args.input, args.vocab_size, float(os.environ.get("BENCH_SCALE", "1")))
    for k, v in res.items():
        print(f"{k}: {v}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
