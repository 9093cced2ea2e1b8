"""`babelmill` subcommands of the curation pipeline: run, langid, quality, dedup, dedup-index,
balance, report, calibrate, quality-model. Registered by babelmill/cli.py through `register`,
the same way as the tokenizer, pretrain and audit subcommands.

The single-stage subcommands (`babelmill langid|quality|dedup ...`) build an ordinary pipeline
config in code and run it like `babelmill run`, so they get the same engines, accounting,
rejects and resumability; langid keeps its run directory next to the requested output
(`OUT.run/`) with its manifest and rejects.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
from pathlib import Path

# What the commands run (pyarrow, the runner) is imported inside them: babelmill/cli.py builds
# its parser from `register` on every invocation, `babelmill pretrain ...` and `--help` included.

LANGID_COLUMNS = ("id", "lang", "lang_score", "script", "top_langs")


def _collect(layout, out_path: Path, columns: tuple[str, ...]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from babelmill.pipeline.io.writers import ShardWriter

    shards = sorted(layout.output_dir.glob("*.parquet"))
    schema = pq.read_schema(shards[0]).empty_table().select(list(columns)).schema if shards else None
    if schema is None:
        raise RuntimeError(f"no output shards in {layout.output_dir}")
    with ShardWriter(out_path, schema) as w:
        for s in shards:
            for batch in pq.ParquetFile(s).iter_batches(columns=list(columns)):
                w.write(pa.Table.from_batches([batch], schema=schema))
        return w.rows


def langid_command(args) -> int:
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.layout import RunLayout
    from babelmill.pipeline.runner.run import OutputDirError, run_pipeline
    from babelmill.pipeline.runner.summary import print_summary

    out = Path(args.output)
    params = {"drop": False}
    if args.model:
        params["model_path"] = args.model
    cfg = PipelineConfig.model_validate(
        {
            "name": "langid",
            "languages": args.languages,
            "input": {"paths": args.input, "text_field": args.text_field, "id_field": args.id_field},
            "output": {"dir": str(out.with_name(out.name + ".run"))},
            "stages": [{"name": "langid", "params": params}],
            "strict": args.strict,
            # one file in, one file out: in-process unless --engine says otherwise (the parser's
            # engine_default); quality/dedup default to Ray like `babelmill run`
            "engine": {"name": args.engine or getattr(args, "engine_default", None) or "ray"},
        }
    )
    if out.is_dir():  # found now, not after the whole run when the file is written
        raise OutputDirError(f"--output {out} is a directory; langid writes one Parquet file", errno.EISDIR, str(out))
    manifest = run_pipeline(cfg, overwrite=args.overwrite)
    rows = _collect(RunLayout(Path(cfg.output.dir)), out, LANGID_COLUMNS)
    print_summary(manifest)
    print(f"wrote {rows} rows to {out}; rejects and manifest in {cfg.output.dir}")
    return 0


def stage_command(args, stages: list, name: str) -> int:
    """`babelmill quality|dedup --input IN --output OUT_DIR`: OUT_DIR is an ordinary run
    directory (output/ = kept documents, rejects/ = id, reason, detail, kept_id, ... as Parquet,
    manifest.json)."""
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.run import run_pipeline
    from babelmill.pipeline.runner.summary import print_summary

    cfg = PipelineConfig.model_validate(
        {
            "name": name,
            "languages": args.languages,
            "input": {"paths": args.input, "text_field": args.text_field, "id_field": args.id_field,
                      "extra_fields": ["lang"]},
            "output": {"dir": args.output},
            "stages": stages,
            "strict": args.strict,
            "engine": {"name": args.engine or "ray"},
            "dedup": {"against": list(getattr(args, "against", None) or []),
                      "index": bool(getattr(args, "index", False))},
        }
    )
    manifest = run_pipeline(cfg, overwrite=args.overwrite)
    print_summary(manifest)
    print(f"kept documents: {args.output}/output/  rejects: {args.output}/rejects/  manifest: {args.output}/manifest.json")
    return 0


def quality_command(args) -> int:
    # Quality thresholds are per language: documents without a `lang` get one from LID first
    # (annotate only, nothing is dropped for language reasons here).
    stages = [{"name": "langid", "params": {"drop": False, "keep_given": True}}, "quality"]
    return stage_command(args, stages, "quality")


def dedup_command(args) -> int:
    return stage_command(args, ["dedup_exact", "dedup_near"], "dedup")


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
    return langid_command(args)


def cmd_quality(args) -> int:
    return quality_command(args)


def cmd_dedup_index(args) -> int:
    from babelmill.pipeline.dedup.index import build_for_run

    meta = build_for_run(args.run_dir)
    rows = sum(s["rows"] for s in meta["shards"])
    print(f"indexed {rows} documents of {args.run_dir} in {Path(args.run_dir) / 'dedup' / 'index'}")
    return 0


def cmd_dedup(args) -> int:
    return dedup_command(args)


def cmd_calibrate(args) -> int:
    from babelmill.pipeline.stages.quality.threshold_fit import run

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


def register(sub) -> None:
    """Add the pipeline's subcommands to babelmill's argparse subparsers."""
    from babelmill.yamlconf import add_set_argument

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
    from babelmill.pipeline.stages.quality.threshold_fit import add_arguments as calibrate_arguments

    calibrate_arguments(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("quality-model", help="train quality models: fastText classifiers (train), KenLM n-gram LMs (train-lm)")
    from babelmill.pipeline.quality_models.cli import add_arguments as quality_model_arguments

    quality_model_arguments(p)
    p.set_defaults(func=cmd_quality_model)
