"""Several models audited side by side against the same benchmarks, one report each plus a
summary: e.g. a clean model and contaminated ones trained by `pretrain/`, each scanned against
its own training corpus.

    python -m demo.audit --model clean=DIR --model contaminated=DIR --benchmark FILE_OR_DIR ...
        [--corpus clean=PATH ...] --out DIR

It is a comparison for showing the audit at work, not a feature of it: `babelmill audit`
(babelmill.contamination.audit.run_audit) audits one model, and this loops over it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from babelmill.contamination.audit import run_audit


def demo(models: dict[str, str | Path], benchmarks: Sequence[str | Path], out_dir: str | Path,
         corpora: dict[str, Sequence[str | Path]] | None = None, seed: int = 0, **kw) -> dict:
    """Audit each named model (HF dir or megatron checkpoint) against the same benchmarks, scanning
    its own training corpus if given; writes <out_dir>/<name>.json/.html and summary.json/.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for name, path in models.items():
        res = run_audit(path, benchmarks, corpora=(corpora or {}).get(name, ()), seed=seed,
                        json_out=out / f"{name}.json", html_out=out / f"{name}.html", **kw)
        summary[name] = res
    from babelmill.contamination.report import write_summary_html

    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    write_summary_html(summary, out / "summary.html")
    return summary


def _named(values: Sequence[str], what: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise SystemExit(f"{what} must be NAME=PATH, got {v!r}")
        out.setdefault(name, []).append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m demo.audit --model clean=DIR --model contaminated=DIR
    --benchmark FILE_OR_DIR ... [--corpus clean=PATH ...] --out DIR`."""
    ap = argparse.ArgumentParser(prog="python -m demo.audit", description=main.__doc__)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--benchmark", action="append", required=True)
    ap.add_argument("--corpus", action="append", default=[], metavar="NAME=PATH", help="a model's training corpus")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--languages")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    models = {k: v[0] for k, v in _named(a.model, "--model").items()}
    summary = demo(models, a.benchmark, a.out, corpora=_named(a.corpus, "--corpus"), seed=a.seed, limit=a.limit,
                   languages=a.languages.split(",") if a.languages else None)
    for name, r in summary.items():
        for bench, b in r["benchmarks"].items():
            for lang, x in sorted(b["languages"].items()):
                print(f"{name} {bench} {lang}: acc {x['acc_original']:.3f} -> {x['acc_generalized']:.3f} "
                      f"delta {x['delta']:+.3f} [{x['ci_low']:+.3f}, {x['ci_high']:+.3f}] {x['verdict']}")
    print(f"reports: {Path(a.out) / 'summary.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
