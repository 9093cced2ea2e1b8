"""What every engine's shuffle shares: the map task and the reduce task of one round
(pipeline/core/rounds.py: `RoundSpec.map` gives a task's rows with their `part`,
`RoundSpec.reduce` reduces one partition into <round dir>/part-NNNNN.parquet). Engines only
route rows by their `part` column."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def split_by_part(table: pa.Table) -> list[tuple[int, pa.Table]]:
    if table.num_rows == 0:
        return []
    parts = table.column("part").to_numpy()
    order = np.argsort(parts, kind="stable")
    sorted_t = table.take(pa.array(order))
    sp = parts[order]
    bounds = np.flatnonzero(np.diff(sp)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(sp)]])
    return [(int(sp[s]), sorted_t.slice(s, e - s)) for s, e in zip(starts, ends, strict=True)]
