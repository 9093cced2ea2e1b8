"""Single-stage subcommands for scripting (`babelmill langid ...`).

Each builds an ordinary pipeline config in code and runs it like `babelmill run`, so the
subcommands get the same engines, accounting, rejects and resumability; the run directory
is kept next to the requested output (`OUT.run/`) with its manifest and rejects.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.io.writers import ShardWriter
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.run import OutputDirError, run_pipeline
from babelmill.pipeline.runner.summary import print_summary

LANGID_COLUMNS = ("id", "lang", "lang_score", "script", "top_langs")


def _collect(layout: RunLayout, out_path: Path, columns: tuple[str, ...]) -> int:
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
