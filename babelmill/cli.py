"""`babelmill` command line: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path


def _add_engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=["ray", "beam", "local"], help="override the config's engine")


def cmd_run(args) -> int:
    from babelmill.pipeline.config import load_config
    from babelmill.pipeline.runner.run import run_pipeline
    from babelmill.pipeline.runner.summary import print_summary
    from babelmill.yamlconf import parse_set

    overrides = parse_set(args.set)
    if args.output:
        overrides["output.dir"] = args.output
    if args.strict:
        overrides["strict"] = True
    cfg = load_config(args.config, overrides)
    manifest = run_pipeline(cfg, engine=args.engine, overwrite=args.overwrite)
    print_summary(manifest)
    print(f"manifest: {Path(cfg.output.dir) / 'manifest.json'}")
    if cfg.balance is not None:
        import json

        from babelmill.pipeline.balance.summary import print_balance

        bal = Path(cfg.output.dir) / cfg.balance.output_subdir / "balance.json"
        print_balance(json.loads(bal.read_text()))
        print(f"balance manifest: {bal}")
    return 0


def cmd_langid(args) -> int:
    from babelmill.pipeline.scripting import langid_command

    return langid_command(args)


def cmd_quality(args) -> int:
    from babelmill.pipeline.scripting import quality_command

    return quality_command(args)


def cmd_dedup_index(args) -> int:
    from babelmill.pipeline.dedup.index import build_for_run

    meta = build_for_run(args.run_dir)
    rows = sum(s["rows"] for s in meta["shards"])
    print(f"indexed {rows} documents of {args.run_dir} in {Path(args.run_dir) / 'dedup' / 'index'}")
    return 0


def cmd_dedup(args) -> int:
    from babelmill.pipeline.scripting import dedup_command

    return dedup_command(args)


def cmd_calibrate(args) -> int:
    from babelmill.pipeline.stages.quality.calibrate import run

    return run(args)


def cmd_quality_model(args) -> int:
    from babelmill.pipeline.quality_models.cli import run

    return run(args)


def cmd_balance(args) -> int:
    from babelmill.pipeline.balance.config import BalanceConfig
    from babelmill.pipeline.balance.run import run_balance
    from babelmill.pipeline.balance.summary import print_balance
    from babelmill.pipeline.config import EngineConfig, PipelineConfig
    from babelmill.yamlconf import load_model, read_yaml

    run_dir = Path(args.run_dir)
    run_cfg_path = run_dir / "run_config.yaml"
    engine_cfg, bal_cfg = EngineConfig(), None
    if run_cfg_path.exists():
        import yaml

        doc = yaml.safe_load(run_cfg_path.read_text()) or {}
        doc.pop("_fingerprint", None)
        run_cfg = PipelineConfig.model_validate(doc)
        engine_cfg, bal_cfg = run_cfg.engine, run_cfg.balance
    if args.config:
        data, root = read_yaml(args.config)
        data = data.get("balance", data) if isinstance(data, dict) else data
        bal_cfg = load_model(BalanceConfig, args.config, data, root)
    if bal_cfg is None:
        bal_cfg = BalanceConfig()
    # balance writes under the run directory: hold its lock, as a run does (no-op for a
    # directory that does not exist; run_balance then reports the missing run)
    from babelmill.pipeline.runner.lock import run_dir_lock

    lock = run_dir_lock(run_dir, what="balance") if run_dir.is_dir() else contextlib.nullcontext()
    with lock:
        report = run_balance(run_dir, bal_cfg, engine=args.engine or engine_cfg.name, engine_cfg=engine_cfg,
                             overwrite=args.overwrite)
    print_balance(report)
    print(f"balance manifest: {run_dir / bal_cfg.output_subdir / 'balance.json'}")
    return 0


def cmd_report(args) -> int:
    from babelmill.pipeline.report.datacard import write_datacard

    paths = write_datacard(args.run_dir, html_path=args.html, json_path=args.json)
    print(f"data card: {paths['html']}\n           {paths['json']}")
    return 0


def _add_io(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--input", required=True, nargs="+", help="JSONL or Parquet with id, text (and optionally lang)")
    p.add_argument("--output", required=True, help=out_help)
    p.add_argument("--languages", help="language registry YAML")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in the output dir")
    _add_engine(p)


def build_parser() -> argparse.ArgumentParser:
    from babelmill.yamlconf import add_set_argument

    ap = argparse.ArgumentParser(prog="babelmill", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="run a pipeline described by a YAML config")
    p.add_argument("config")
    _add_engine(p)
    p.add_argument("--output", help="override output.dir")
    p.add_argument("--strict", action="store_true", help="fail on the first bad input record")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in the output dir")
    add_set_argument(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("langid", help="identify the language of each document")
    p.add_argument("--input", required=True, nargs="+", help="JSONL or Parquet with id and text")
    p.add_argument("--output", required=True, help="Parquet file: id, lang, lang_score, script, top_langs")
    p.add_argument("--model", help="fastText LID model (default: lid.176.ftz)")
    p.add_argument("--languages", help="language registry YAML")
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id")
    p.add_argument("--strict", action="store_true")
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in OUTPUT.run/")
    _add_engine(p)
    p.set_defaults(func=cmd_langid, engine_default="local")

    p = sub.add_parser("quality", help="per-language quality filters (LID first where lang is missing)")
    _add_io(p, "run directory: output/ (kept), rejects/ (id, reason, detail), manifest.json")
    p.set_defaults(func=cmd_quality)

    p = sub.add_parser("dedup", help="exact + MinHash near deduplication")
    _add_io(p, "run directory: output/ (kept, with cluster_size), rejects/ (id, reason, kept_id), manifest.json")
    p.add_argument("--against", action="append", default=[], metavar="EARLIER_RUN_DIR",
                   help="also drop documents that duplicate one of an earlier dedup run (its output directory; "
                        "repeatable); the earlier corpus is not read again, only its dedup/index/")
    p.add_argument("--index", action="store_true",
                   help="write dedup/index/ so that later runs can deduplicate against this one (--against)")
    p.set_defaults(func=cmd_dedup)

    p = sub.add_parser("dedup-index", help="index a finished dedup run so that later runs can use --against it")
    p.add_argument("run_dir", help="output directory of a finished `babelmill dedup` / `babelmill run` with dedup stages")
    p.set_defaults(func=cmd_dedup_index)

    p = sub.add_parser("balance", help="balance a curated run across languages (token budget, policy, epoch cap)")
    p.add_argument("run_dir", help="a finished `babelmill run` directory")
    p.add_argument("--config", help="balance YAML (a `balance:` mapping or its keys); default: the run config's")
    p.add_argument("--overwrite", action="store_true", help="replace a balance made with another config")
    _add_engine(p)
    p.set_defaults(func=cmd_balance)

    p = sub.add_parser("report", help="write the data card (HTML + JSON) of a run")
    p.add_argument("run_dir")
    p.add_argument("--html", help="default: RUN_DIR/report/datacard.html")
    p.add_argument("--json", help="default: RUN_DIR/report/datacard.json")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("calibrate", help="propose per-language quality thresholds from a corpus")
    from babelmill.pipeline.stages.quality.calibrate import add_arguments as calibrate_arguments

    calibrate_arguments(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("quality-model", help="train quality models: fastText classifiers (train), KenLM n-gram LMs (train-lm)")
    from babelmill.pipeline.quality_models.cli import add_arguments as quality_model_arguments

    quality_model_arguments(p)
    p.set_defaults(func=cmd_quality_model)

    from babelmill.tokenizer.cli import register as register_tokenizer

    register_tokenizer(sub)

    from babelmill.pretrain.cli import register as register_pretrain

    register_pretrain(sub)

    from babelmill.contamination.cli import register as register_audit

    register_audit(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from babelmill.errors import BabelmillError

    # The one place where errors that mean "fix your input, config, run directory or
    # checkpoint" (babelmill.errors.BabelmillError) become one line and exit code 2, for every
    # subcommand. FileNotFoundError: a missing input or run directory (the message names the
    # path). Every other exception is a bug and keeps its traceback.
    try:
        return args.func(args)
    except (BabelmillError, FileNotFoundError) as e:
        print("babelmill: error: " + "; ".join(line.strip() for line in str(e).splitlines() if line.strip()),
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
