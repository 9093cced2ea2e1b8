"""Input readers: plan work units over files, stream each unit as Arrow batches of documents
plus a table of read-time rejects (quarantine), so every input record is accounted for."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from babelmill.pipeline.io.readers.options import FORMATS, InputError, ReadOptions, WorkUnit
from babelmill.pipeline.io.readers.planning import detect_format, plan_units


def read_unit(unit: WorkUnit, opts: ReadOptions) -> Iterator[tuple[pa.RecordBatch, pa.Table]]:
    """Yield (documents, rejects) batches for one unit; each input record lands in exactly one."""
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
    yield from reader(unit, opts)


__all__ = ["FORMATS", "InputError", "ReadOptions", "WorkUnit", "detect_format", "plan_units", "read_unit"]
