"""Step 4 of `make demo`: train (resumable) and compare the parity-aware, balanced, natural-share
and unigram tokenizers on the demo corpus (babelmill.tokenizer.compare), print the parity
table and write the HTML/JSON report.

    python -m demo.tokenizer [--raw data/demo/raw] [--parallel data/demo/parallel] [--output DIR]

The comparison itself is library code (`babelmill tokenizer compare` runs it on any corpus);
only the demo's defaults, printing and report live here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from babelmill.tokenizer.compare import compare
from babelmill.tokenizer.report import print_table, write_html
from babelmill.tokenizer.train import DEFAULT_VOCAB


def demo(raw_dir: str | Path = "data/demo/raw", parallel_dir: str | Path = "data/demo/parallel",
         out_dir: str | Path = "runs/demo/tokenizer", vocab_size: int = DEFAULT_VOCAB,
         html: bool = True, quiet: bool = False) -> dict:
    """The demo step: train (resumable) and compare the three tokenizers on the demo corpus,
    print the parity table, write out_dir/compare.json and out_dir/report.html."""
    t0 = time.perf_counter()
    rep = compare([str(raw_dir)], parallel_dir, out_dir, vocab_size=vocab_size)
    res = list(rep["results"].values())
    if not quiet:
        print_table(res)
        v = rep["verdict"]
        print(f"balanced vs natural: worst parity {v['balanced_worst_parity']:.3f} vs {v['natural_worst_parity']:.3f}, "
              f"std {v['balanced_std_parity']:.3f} vs {v['natural_std_parity']:.3f}")
    if html:
        notes = [f"Vocabulary {vocab_size}; trained on {raw_dir}; evaluated on {parallel_dir}.",
                 "Training: " + json.dumps(rep["train"])]
        write_html(res, Path(out_dir) / "report.html", notes=notes)
    rep["seconds"] = round(time.perf_counter() - t0, 2)
    if not quiet:
        print(f"report: {Path(out_dir) / 'report.html'}  ({rep['seconds']} s)")
    return rep


def main(argv: list[str] | None = None) -> int:
    """`python -m demo.tokenizer` runs the demo step alone (`make demo` calls `demo`)."""
    import argparse

    ap = argparse.ArgumentParser(description=demo.__doc__)
    ap.add_argument("--raw", default="data/demo/raw")
    ap.add_argument("--parallel", default="data/demo/parallel")
    ap.add_argument("--output", default="runs/demo/tokenizer")
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB)
    args = ap.parse_args(argv)
    rep = demo(args.raw, args.parallel, args.output, vocab_size=args.vocab_size)
    v = rep["verdict"]
    return 0 if v["lower_worst_parity"] and v["lower_std_parity"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
