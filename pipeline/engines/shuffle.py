"""What every engine's shuffle shares: the map task (a global stage's key rows for one staged
shard) and the reduce task (a global stage's reduce over one partition, written atomically to
<out_dir>/part-NNNNN.parquet). Engines only route rows by their `part` column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.io.writers import atomic_write_parquet


def excluded_refs(files: list[str], unit_index: int) -> np.ndarray:
    """Refs of this unit already dropped by an earlier global stage."""
    out = []
    lo, hi = unit_index << 32, ((unit_index + 1) << 32) - 1
    for f in files:
        r = pq.read_table(f, columns=["ref"]).column("ref").to_numpy()
        out.append(r[(r >= lo) & (r <= hi)])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def map_task(stage, task: dict) -> pa.Table:
    if task.get("index"):  # a shard of an earlier run's dedup index (dedup.against)
        return stage.index_key_rows(Path(task["shard"]), task["unit_index"])
    excl = excluded_refs(task["excluded"], task["unit_index"])
    return stage.key_rows(Path(task["shard"]), task["unit_index"], excl)


def reduce_task(stage, out_dir: str, part: int, table: pa.Table) -> int:
    result = stage.reduce(table.drop_columns(["part"]))
    # intermediate: fast codec, no fsync (a phase without its _SUCCESS marker is redone)
    atomic_write_parquet(Path(out_dir) / f"part-{part:05d}.parquet", result, compression="lz4", fsync=False)
    return result.num_rows


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
