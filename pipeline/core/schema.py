"""Column conventions shared by readers, stages, writers and engines.

A document batch always carries `id`, `text`, `source` and `offset` (where the document came
from, so that any reject can be traced back to file and line/byte/row). Stages add columns.

A stage marks documents it drops by filling two columns instead of removing rows:
`drop_reason` (null = keep) and `drop_detail` (a short, human-readable measured value).
The runner (not the stage) splits kept rows from rejected ones, so every engine accounts for
documents in exactly the same way.
"""

from __future__ import annotations

import pyarrow as pa

DROP_REASON = "drop_reason"
DROP_DETAIL = "drop_detail"

#: Columns every document batch has, in this order, after reading.
DOC_COLUMNS: dict[str, pa.DataType] = {
    "id": pa.string(),
    "text": pa.large_string(),
    "source": pa.string(),
    "offset": pa.int64(),
}

#: One row per document that did not make it to the output (quarantined at read time or
#: dropped by a stage). `text` holds the document (or, for unreadable input, a snippet of
#: the raw bytes) so that nothing is lost silently; `kept_id` names the surviving copy for
#: duplicates.
#:
#: `records_lost` (nullable int64): how many input records, *beyond the one this row stands
#: for*, are known to have been lost with it: e.g. the other rows of an unreadable Parquet row
#: group (from the footer metadata), or the other records of a compressed member that fails
#: its integrity check. Null = none, or unknown (the detail then says "unknown"), e.g. the
#: rest of a truncated file. Every stage-time reject and every single-bad-line reject is null.
#: So the records an input held are at least `documents + reject rows + sum(records_lost)`.
REJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("offset", pa.int64()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("lang", pa.string()),
        ("kept_id", pa.string()),
        ("text", pa.large_string()),
        ("records_lost", pa.int64()),
    ]
)


def empty_rejects() -> pa.Table:
    return REJECT_SCHEMA.empty_table()


def make_rejects(rows: list[dict]) -> pa.Table:
    """Build a rejects table from dicts; missing keys become nulls."""
    cols = {f.name: [r.get(f.name) for r in rows] for f in REJECT_SCHEMA}
    return pa.Table.from_pydict(cols, schema=REJECT_SCHEMA)


def rejects_from_columns(n: int, columns: dict) -> pa.Table:
    """A rejects table of `n` rows from Arrow columns by name, cast to REJECT_SCHEMA; a column
    not given is null (so a reject column added later needs no change at the call sites)."""
    return pa.Table.from_arrays(
        [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in REJECT_SCHEMA],
        schema=REJECT_SCHEMA,
    )
