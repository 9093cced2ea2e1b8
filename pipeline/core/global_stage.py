"""The global-stage contract: a stage whose decision needs every document of the run
(deduplication; a URL or paragraph dedup would be one more subclass in one file).

A global stage is first an ordinary stage: its `process()` adds columns per batch (a hash, a
signature) in the map phase, and the runner writes the batches to staged/<unit>.parquet
instead of output/. Then, after every unit is mapped, the runner runs the stage's global part
through the engine (in-process, Ray Data, Beam: engines only move rows):

1. `key_rows(shard, unit_index, excluded)` on every staged shard, as engine tasks: a table with
   an int32 `part` column (the shuffle partition) and whatever the reduce needs. Documents are
   named by refs, `(unit_index << 32) | row` (pipeline/dedup/refs.py): the smallest ref of a
   group is the earliest document in input order, whatever the engine or parallelism.
   `excluded` are the refs an earlier global stage already dropped.
2. the engine groups the rows by `part` and calls `reduce(table)` once per partition (the
   `part` column removed); its result is written to RUN/dedup/<stage>/parts/part-NNNNN.parquet;
3. `finalize(parts, shards)` on the driver returns the drops: a table with `DROPS_SCHEMA`
   (ref, kept_ref, kept_id, reason, detail), one row per dropped document of this run.
   `shards` maps unit index -> staged shard (and negative unit numbers -> index shards of
   earlier runs, see below) for stages that need to read more.

The runner then writes drops.parquet and a _SUCCESS marker per stage (a finished stage is
skipped on rerun over the same inputs), computes cluster sizes over all stages' drops
(`cluster_sizes`), and an apply phase per unit removes the drops from each staged shard,
writes output/ (without the `internal` columns, with `cluster_size`) and the rejects.

Optional, for deduplicating against earlier runs (pipeline/dedup/index.py): `index_params()`
(what must be equal for two runs' keys to meet), `index_columns(staged)` (this stage's columns
of a unit's index shard) and `index_key_rows(shard, unit_index)` (key rows of an earlier run's
index shard; unit_index < 0, so its refs sort before every new document). A stage without
them (`supports_index = False`) cannot be used with `dedup.index` or `dedup.against`: the run
says so at start-up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from babelmill.pipeline.core.stage import Stage

DROPS_SCHEMA = pa.schema([("ref", pa.int64()), ("kept_ref", pa.int64()), ("kept_id", pa.string()),
                          ("reason", pa.string()), ("detail", pa.string())])


class GlobalStage(Stage):
    """Base class of global stages; see the module docstring for the contract."""

    #: columns produced only for the global part; not written to the final output
    internal: tuple[str, ...] = ()
    #: whether the stage implements the index methods below (dedup.index, dedup.against)
    supports_index: bool = False

    def key_rows(self, shard: Path, unit_index: int, excluded: np.ndarray) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def reduce(self, table: pa.Table) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def finalize(self, parts: list[pa.Table], shards: dict[int, Path]) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    # -- optional: the run's index, and deduplication against earlier runs ---------------------
    def index_params(self) -> dict:  # pragma: no cover
        """Parameters that must be equal for an earlier run's index to be usable."""
        raise NotImplementedError(f"stage '{self.name}' cannot be used against earlier runs")

    def index_columns(self, staged: pa.Table) -> dict[str, pa.Array]:  # pragma: no cover
        """This stage's columns of the index shard of one staged unit."""
        raise NotImplementedError(f"stage '{self.name}' cannot be used against earlier runs")

    def index_key_rows(self, shard: Path, unit_index: int) -> pa.Table:  # pragma: no cover
        """Key rows of an earlier run's index shard (unit_index < 0)."""
        raise NotImplementedError(f"stage '{self.name}' cannot be used against earlier runs")


def is_global(stage) -> bool:
    return isinstance(stage, GlobalStage)


def cluster_sizes(drops: list[pa.Table]) -> dict[int, int]:
    """Documents each kept document stands for (itself + everything folded into it, through
    the global stages in order: exact dedup first, so near clusters absorb exact groups); only
    sizes > 1 are returned."""
    size: dict[int, int] = {}
    for d in drops:
        for ref, kept in zip(d.column("ref").to_pylist(), d.column("kept_ref").to_pylist(), strict=True):
            size[kept] = size.get(kept, 1) + size.pop(ref, 1)
    return {k: v for k, v in size.items() if v > 1}


__all__ = ["DROPS_SCHEMA", "GlobalStage", "cluster_sizes", "is_global"]
