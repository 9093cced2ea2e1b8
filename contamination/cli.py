"""`babelmill audit`: the scripting contract of the contamination audit.

    babelmill audit --model PATH --benchmark FILE [--benchmark FILE ...] --json OUT.json --html OUT.html
                    [--corpus DIR_OR_FILE ...] [--seed S]

PATH is a local Hugging Face model dir or a megatron-core checkpoint dir (detected by
`is_megatron_checkpoint`). Exit code 0 when the audit ran (whatever the verdicts), 2 on bad input
(including a corrupt checkpoint, or one refused because loading it could run code);
`--fail-on-contamination` makes a contaminated verdict exit 1, for CI gates.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)

CALIBRATE_DOC = """`babelmill audit-calibrate`: set the audit's verdict threshold from clean reference models.

    babelmill audit-calibrate (--delta D ... | --from-json CLEAN_AUDIT.json ...) --out my_verdict.yaml
                              [--config verdict.yaml] [--margin M]

Writes a verdict config (the shape of configs/contamination/verdict.yaml) whose
`contaminated_below` is min(clean deltas) - margin, for `babelmill audit --verdict-config`.
This calibrates the contamination verdict; `babelmill calibrate` proposes the quality filter's
thresholds from a corpus.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="local HF model dir or megatron-core checkpoint dir")
    p.add_argument("--benchmark", required=True, action="append", metavar="FILE",
                   help="benchmark file (JSONL/Parquet/CSV) or folder of <lang>.jsonl; repeat; files of one benchmark "
                        "name (translations) are merged")
    p.add_argument("--json", required=True, metavar="OUT.json")
    p.add_argument("--html", metavar="OUT.html")
    p.add_argument("--corpus", action="append", default=[], metavar="DIR_OR_FILE",
                   help="JSONL/Parquet corpus (or folder) with `text` to scan for n-gram overlap; repeat")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--verdict-config", help="verdict thresholds (default configs/contamination/verdict.yaml)")
    p.add_argument("--ngram-config", help="n-gram settings (default configs/contamination/ngram.yaml)")
    p.add_argument("--same-subject", action="store_true", help="swap in answers from the same subject")
    p.add_argument("--batch-size", type=int, default=32, help="options scored per forward pass")
    p.add_argument("--limit", type=int, help="at most this many items per benchmark language")
    p.add_argument("--languages", help="comma-separated languages to audit (default: all)")
    p.add_argument("--benchmark-lang", "--lang", dest="benchmark_lang",
                   help="language of items that name none (e.g. ARC: en); default: identified from the "
                        "items by the LID stage (majority over the questions)")
    p.add_argument("--generalized-dir", help="where to save the generalized benchmark (default: next to --json)")
    p.add_argument("--skip-bad-items", action="store_true", help="leave out malformed items instead of failing")
    p.add_argument("--fail-on-contamination", action="store_true")


def cmd_audit(args) -> int:
    # bad input (a malformed benchmark, a corrupt or unsafe checkpoint, a bad config) raises a
    # babelmill.errors domain error: babelmill/cli.py prints it as one line, exit code 2
    from babelmill.contamination.audit import run_audit

    res = run_audit(args.model, args.benchmark, corpora=args.corpus, seed=args.seed, json_out=args.json,
                    html_out=args.html, verdict_config=args.verdict_config, ngram_config=args.ngram_config,
                    same_subject=args.same_subject, batch_size=args.batch_size, limit=args.limit,
                    languages=args.languages.split(",") if args.languages else None,
                    generalized_dir=args.generalized_dir, benchmark_lang=args.benchmark_lang,
                    skip_bad=args.skip_bad_items, progress=sys.stderr.isatty())
    for name, b in res["benchmarks"].items():
        li = b.get("language_identification")
        if li:
            how = li["method"] if li.get("share") is None else \
                f"identified from {li['n']} items' questions, {li['share']:.0%} of them"
            print(f"{name}: language {li['lang']} ({how})")
        for lang, r in sorted(b["languages"].items()):
            print(f"{name} {lang}: n={r['n']} acc {r['acc_original']:.3f} -> {r['acc_generalized']:.3f} "
                  f"delta {r['delta']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] {r['verdict']}")
        if b.get("cross_lingual", {}).get("memorised_language"):
            print(f"{name}: behaves as if it memorised the {b['cross_lingual']['memorised_language']} version")
    if res.get("overlap"):
        for name, langs in res["overlap"]["benchmarks"].items():
            for lang, o in sorted(langs.items()):
                print(f"{name} {lang}: {o['items_overlapping']}/{o['items']} items in the corpus "
                      f"({o['docs_overlapping']} documents)")
    print(f"verdict: {res['verdict']}  json: {args.json}" + (f"  html: {args.html}" if args.html else ""))
    return 1 if args.fail_on_contamination and res["verdict"] == "contaminated" else 0


def add_calibrate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--delta", type=float, action="append", default=[], metavar="D",
                   help="a clean reference model's delta (generalized - original accuracy); repeat")
    p.add_argument("--from-json", action="append", default=[], metavar="CLEAN_AUDIT.json",
                   help="a `babelmill audit --json` output of a clean model: all its deltas; repeat")
    p.add_argument("--config", help="starting verdict config (default configs/contamination/verdict.yaml)")
    p.add_argument("--margin", type=float, help="subtracted from the smallest clean delta (default: the config's)")
    p.add_argument("--out", required=True, metavar="my_verdict.yaml", help="verdict config to write")


def cmd_calibrate(args) -> int:
    from babelmill.contamination.verdict_calibration import calibrate, deltas_from_audits
    from babelmill.contamination.verdicts import VerdictConfig

    deltas = {f"cli{i}": d for i, d in enumerate(args.delta)} | deltas_from_audits(args.from_json)
    cfg = calibrate(deltas, VerdictConfig.load(args.config), args.margin, args.out)
    print(f"contaminated_below = {cfg.contaminated_below:.4f} (from {len(deltas)} clean deltas) -> {args.out}")
    return 0


def register(subparsers) -> None:
    """Add `audit` and `audit-calibrate` to babelmill's argparse subparsers (func returns an exit code)."""
    p = subparsers.add_parser("audit", help="contamination audit: choice-swap test, n-gram overlap, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=cmd_audit)

    p = subparsers.add_parser("audit-calibrate", help="set the audit's contamination threshold (verdict config) "
                              "from clean reference models' deltas", description=CALIBRATE_DOC,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_calibrate_arguments(p)
    p.set_defaults(func=cmd_calibrate)


def main(argv: list[str] | None = None) -> int:
    """`python -m babelmill.contamination.cli ARGS` = `babelmill audit ARGS` (kept for scripts that run
    the audit as a module): the same parser, logging and error handling."""
    from babelmill.cli import main as babelmill_main

    return babelmill_main(["audit", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
