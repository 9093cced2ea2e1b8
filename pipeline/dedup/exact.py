"""Exact deduplication as one round: key rows (hash, ref, id) are routed by hash to partitions;
each partition keeps the smallest ref of every hash group and drops the others."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from babelmill.pipeline.core.global_stage import DROPS_SCHEMA  # the drops table every global stage returns

KEYS_SCHEMA = pa.schema([("part", pa.int32()), ("k1", pa.uint64()), ("k2", pa.uint64()), ("ref", pa.int64()),
                         ("id", pa.string())])


def key_rows(hashes: pa.Array, ids: pa.Array, refs: np.ndarray) -> pa.Table:
    if len(hashes) == 0:
        return KEYS_SCHEMA.empty_table()
    words = np.frombuffer(hashes.buffers()[1], dtype=np.uint64, count=2 * len(hashes)).reshape(-1, 2)
    return pa.table({
        "part": pa.array((words[:, 0] >> np.uint64(33)).astype(np.int32)),  # routed by the hash
        "k1": pa.array(words[:, 0]), "k2": pa.array(words[:, 1]),
        "ref": pa.array(refs), "id": ids.cast(pa.string()),
    }, schema=KEYS_SCHEMA)


def reduce_groups(table: pa.Table) -> pa.Table:
    """Drops for one partition: every member of a hash group except the smallest ref."""
    if table.num_rows == 0:
        return DROPS_SCHEMA.empty_table()
    k1 = table.column("k1").to_numpy()
    k2 = table.column("k2").to_numpy()
    ref = table.column("ref").to_numpy()
    order = np.lexsort((ref, k2, k1))
    k1, k2, ref = k1[order], k2[order], ref[order]
    ids = table.column("id").take(pa.array(order))
    new_group = np.ones(len(ref), bool)
    new_group[1:] = (k1[1:] != k1[:-1]) | (k2[1:] != k2[:-1])
    first = np.maximum.accumulate(np.where(new_group, np.arange(len(ref)), 0))
    dup = ~new_group
    if not dup.any():
        return DROPS_SCHEMA.empty_table()
    kept = first[dup]
    kept_ids = ids.take(pa.array(kept))
    return pa.table({
        "ref": pa.array(ref[dup]), "kept_ref": pa.array(ref[kept]), "kept_id": kept_ids,
        "reason": pa.array(["dup_exact"] * int(dup.sum()), pa.string()),
        "detail": pa.array(["same normalised text as " + k for k in kept_ids.to_pylist()], pa.string()),
    }, schema=DROPS_SCHEMA)
