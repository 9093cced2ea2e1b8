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


def _checkpoint_errors() -> tuple[type, ...]:
    """babelmill.pretrain's CheckpointError (corrupt / unsafe / unloadable megatron checkpoint) when
    pretrain was imported - only a megatron model loads it, and importing it here would pull in
    torch for every audit."""
    mod = sys.modules.get("babelmill.pretrain.checkpoint")
    return (mod.CheckpointError,) if mod is not None else ()


def cmd_audit(args) -> int:
    from babelmill.contamination.audit import run_audit
    from babelmill.contamination.items import BenchmarkError
    from babelmill.errors import error_line

    try:
        res = run_audit(args.model, args.benchmark, corpora=args.corpus, seed=args.seed, json_out=args.json,
                        html_out=args.html, verdict_config=args.verdict_config, ngram_config=args.ngram_config,
                        same_subject=args.same_subject, batch_size=args.batch_size, limit=args.limit,
                        languages=args.languages.split(",") if args.languages else None,
                        generalized_dir=args.generalized_dir, benchmark_lang=args.benchmark_lang,
                        skip_bad=args.skip_bad_items, progress=sys.stderr.isatty())
    except Exception as e:  # noqa: BLE001 - bad input is one line and exit 2; anything else re-raised
        if not isinstance(e, (BenchmarkError, FileNotFoundError, ValueError, *_checkpoint_errors())):
            raise
        print(error_line(e), file=sys.stderr)
        return 2
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


def register(subparsers) -> None:
    """Add the `audit` subcommand to babelmill's argparse subparsers (func returns an exit code)."""
    p = subparsers.add_parser("audit", help="contamination audit: choice-swap test, n-gram overlap, report",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=cmd_audit)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m babelmill.contamination.cli ...`) until babelmill/cli.py wires `register`."""
    ap = argparse.ArgumentParser(prog="babelmill audit", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return cmd_audit(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
