"""Input readers: plan work units over files, stream each unit as Arrow batches of documents
plus a table of read-time rejects (quarantine), so every input record is accounted for.

    plan = plan_inputs(["data/web", "extra/*.parquet"], opts, exclude=[run_dir])
    plan.skipped  # files found but not read (unsupported, links out of the input...), logged
    for docs, rejects in read_unit(plan.units[0], opts): ...

Tools reading a corpus outside a run (tokenizer, pretraining preprocess, n-gram scan) go
through `read_corpus` (corpus.py), choosing `on_bad="strict"` or `"quarantine"`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from babelmill.pipeline.io.readers.batching import doc_schema
from babelmill.pipeline.io.readers.corpus import ON_BAD, OnBad, Quarantine, check_on_bad, read_corpus
from babelmill.pipeline.io.readers.options import (
    FORMATS,
    READ_REASONS,
    SYMLINK_POLICIES,
    InputError,
    MissingInputError,
    ReadOptions,
    WorkUnit,
)
from babelmill.pipeline.io.readers.planning import (
    SKIP_REASONS,
    InputPlan,
    SkippedInput,
    detect_format,
    plan_inputs,
    plan_units,
)


def read_unit(unit: WorkUnit, opts: ReadOptions) -> Iterator[tuple[pa.RecordBatch, pa.Table]]:
    """Yield (documents, rejects) for one unit; each input record lands in exactly one of them.
    Empty pairs are not yielded (an empty file yields nothing)."""
    if unit.format == "jsonl":
        from babelmill.pipeline.io.readers.jsonl import read_jsonl as reader
    elif unit.format == "parquet":
        from babelmill.pipeline.io.readers.parquet import read_parquet as reader
    elif unit.format == "warc":
        from babelmill.pipeline.io.readers.warc import read_warc as reader
    elif unit.format == "text":
        from babelmill.pipeline.io.readers.textdir import read_textdir as reader
    else:
        raise InputError(unit.path, "unknown_format", f"{unit.format!r} (known: {', '.join(FORMATS)})")
    for docs, rejects in reader(unit, opts):
        if docs.num_rows or rejects.num_rows:
            yield docs, rejects

__all__ = [
    "FORMATS",
    "ON_BAD",
    "READ_REASONS",
    "SKIP_REASONS",
    "SYMLINK_POLICIES",
    "InputError",
    "InputPlan",
    "MissingInputError",
    "OnBad",
    "Quarantine",
    "ReadOptions",
    "SkippedInput",
    "WorkUnit",
    "check_on_bad",
    "detect_format",
    "doc_schema",
    "plan_inputs",
    "plan_units",
    "read_corpus",
    "read_unit",
]
