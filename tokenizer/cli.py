"""`babelmill tokenizer {train,eval,compare}`. babelmill/cli.py calls `register(subparsers)`.

    babelmill tokenizer train --input IN [IN ...] --output DIR --vocab-size N
                              [--kind auto|parity|bpe|unigram] [--sentencepiece]
                              [--parallel DEV_DIR | --no-parallel]
                              [--temperature T] [--seed S]
    babelmill tokenizer eval --tokenizer DIR/tokenizer.json --parallel PAR_DIR --json OUT.json [--html OUT.html]
    babelmill tokenizer compare --input IN [IN ...] --parallel PAR_DIR --output DIR [--vocab-size N]

Errors (missing files, misaligned parallel data, no target-language documents) are domain
errors (babelmill.errors): babelmill/cli.py prints them as one line naming the file and exits
with code 2; nothing here catches them.
"""

from __future__ import annotations

import argparse
import json

from babelmill.tokenizer import train as train_mod


def _common_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, nargs="+", help="JSONL/Parquet files or directories with text and lang")
    p.add_argument("--vocab-size", type=int, default=train_mod.DEFAULT_VOCAB,
                   help=f"default {train_mod.DEFAULT_VOCAB} (demo-sized); use 64k-256k at scale")
    p.add_argument("--temperature", type=float, default=train_mod.DEFAULT_TEMPERATURE,
                   help="language sampling temperature (1 = natural shares)")
    p.add_argument("--cost-power", type=float, default=None,
                   help=f"sample correction from a pilot tokenizer (0 = off; default {train_mod.DEFAULT_COST_POWER} "
                        "for --kind bpe, 0 otherwise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lang-field", action="append", dest="lang_fields",
                   help="document field holding the language (repeatable; default: lang, then lang_true)")
    p.add_argument("--languages", help="language registry YAML")


def cmd_train(args) -> int:
    kind = "unigram" if args.sentencepiece else args.kind
    meta = train_mod.train(
        args.input, args.output, vocab_size=args.vocab_size, kind=kind,
        temperature=args.temperature, cost_power=args.cost_power, seed=args.seed,
        lang_fields=tuple(args.lang_fields or train_mod.DEFAULT_LANG_FIELDS), languages=args.languages,
        resume=not args.overwrite, parallel=False if args.no_parallel else args.parallel,
    )
    state = "up to date (reused)" if meta.get("reused") else f"trained in {meta['seconds']['total']} s"
    dev = meta.get("dev_set")
    how = f" (dev set {dev['source']}, {len(dev['languages'])} languages)" if dev else ""
    print(f"{args.output}/tokenizer.json: {meta['kind']}{how}, vocab {meta['actual_vocab_size']}, "
          f"{len(meta['corpus'])} languages, {meta['sample_total_chars']} sample chars, {state}")
    return 0


def cmd_eval(args) -> int:
    from babelmill.tokenizer.evaluate import evaluate, write_json
    from babelmill.tokenizer.report import print_table, write_html

    res = evaluate(args.tokenizer, args.parallel, languages=args.languages, reference=args.reference)
    # The scripting contract: OUT.json maps each language code to its figures; everything
    # else (summary, vocabulary by script, provenance) sits under keys starting with "_".
    flat = {**res["languages"], **{f"_{k}": v for k, v in res.items() if k != "languages"}}
    write_json(flat, args.json)
    if args.html:
        write_html([res], args.html)
    if not args.quiet:
        print_table([res], metrics=("parity", "tokens_per_char", "tokens_per_word", "bytes_fallback_rate"))
    s = res["summary"]
    top = ", ".join(f"{k} {100 * v:.1f}%" for k, v in list(res["vocab_by_script"].items())[:8])
    print(f"vocabulary by script: {top}")
    print(f"worst parity {s['worst_parity']:.3f} ({s['worst_language']}), std {s['std_parity']:.3f}, "
          f"round-trip errors {s['roundtrip_errors']} -> {args.json}")
    return 1 if s["roundtrip_errors"] else 0


def cmd_compare(args) -> int:
    from babelmill.tokenizer.compare import compare
    from babelmill.tokenizer.report import print_table, write_html

    cp = train_mod.DEFAULT_COST_POWER if args.cost_power is None else args.cost_power
    rep = compare(args.input, args.parallel, args.output, vocab_size=args.vocab_size, temperature=args.temperature,
                  cost_power=cp, seed=args.seed,
                  lang_fields=tuple(args.lang_fields or train_mod.DEFAULT_LANG_FIELDS), languages=args.languages)
    res = list(rep["results"].values())
    print_table(res)
    write_html(res, f"{args.output}/report.html")
    print(json.dumps(rep["verdict"]))
    print(f"-> {args.output}/compare.json, {args.output}/report.html")
    return 0


def register(subparsers) -> None:
    """Add `tokenizer` with train/eval/compare to babelmill's subparsers."""
    tp = subparsers.add_parser("tokenizer", help="train and evaluate the multilingual tokenizer")
    sub = tp.add_subparsers(dest="tokenizer_cmd", required=True)

    p = sub.add_parser("train", help="train a parity-aware byte-level BPE (or HF BPE / SentencePiece unigram)")
    _common_train(p)
    p.add_argument("--output", required=True, help="directory: tokenizer.json, tokenizer_meta.json, ...")
    p.add_argument("--kind", choices=train_mod.KINDS, default=train_mod.DEFAULT_KIND,
                   help="auto (default): parity-aware BPE on the --parallel dev set, else on the bundled one "
                        "(UDHR articles 4, 9, 14, 19, 24), else (bundled set covers < 2 of the sample's "
                        "languages) bpe; parity: parity-aware BPE (without any dev set: tokens per compressed "
                        "byte); bpe: HF BpeTrainer on the pilot-corrected sample; unigram: SentencePiece")
    p.add_argument("--sentencepiece", action="store_true", help="same as --kind unigram")
    dev = p.add_mutually_exclusive_group()
    dev.add_argument("--parallel", help="--kind auto/parity: directory of aligned <lang>.txt (dev set, with en.txt) "
                                        "whose parity the trainer equalizes (default: the bundled UDHR dev set)")
    dev.add_argument("--no-parallel", action="store_true",
                     help="no dev set, not even the bundled one: auto = bpe, parity = tokens per compressed byte")
    p.add_argument("--overwrite", action="store_true", help="retrain even if DIR holds a matching tokenizer")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="parity, tokens/char, tokens/word, byte-fallback rate on parallel text")
    p.add_argument("--tokenizer", required=True, help="tokenizer.json (or its directory)")
    p.add_argument("--parallel", required=True, help="directory of <lang>.txt with aligned lines")
    p.add_argument("--json", required=True, help="output JSON: per-language figures, summary, vocab by script")
    p.add_argument("--html", help="also write an HTML report with charts")
    p.add_argument("--reference", default="en", help="parity reference language (default en)")
    p.add_argument("--languages", help="language registry YAML")
    p.add_argument("--quiet", action="store_true", help="no per-language table")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="balanced BPE vs natural-share BPE vs unigram, same vocab and data")
    _common_train(p)
    p.add_argument("--parallel", required=True, help="directory of <lang>.txt with aligned lines")
    p.add_argument("--output", required=True, help="directory for the three tokenizers, compare.json, report.html")
    p.set_defaults(func=cmd_compare)

