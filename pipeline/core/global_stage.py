"""The global-stage contract: a stage whose decision needs every document of the run
(deduplication; a URL or paragraph dedup would be one more subclass in one file).

A global stage is first an ordinary stage: its `process()` adds columns per batch (a hash, a
signature) in the map phase, and the runner writes the batches to staged/<unit>.parquet
instead of output/. Then, after every unit is mapped, the runner calls the stage's
`run_global(rounds)` on the driver, which runs *rounds* through the engine
(pipeline/core/rounds.py: map -> shuffle -> reduce, the results in part files on the run's
filesystem, only statistics back on the driver). The simplest global stage implements two
methods and inherits `run_global`, one round:

1. `key_rows(shard, unit_index, excluded)` on every staged shard, as engine tasks: a table with
   an int32 `part` column (a non-negative hash of the grouping key: rows with equal keys meet
   in one reduce) and whatever the reduce needs. Documents are named by refs,
   `(unit_index << 32) | row` (pipeline/dedup/refs.py): the smallest ref of a group is the
   earliest document in input order, whatever the engine or parallelism. `excluded` are the
   refs an earlier global stage already dropped.
2. `reduce(table)` once per partition (the `part` column removed), on a worker: its drops, a
   table with `DROPS_SCHEMA` (ref, kept_ref, kept_id, reason, detail).

A stage that needs more (near dedup: candidates, verification, connected components) overrides
`run_global` and chains rounds with `rounds.run(...)`, each round's map a method taking
(table, task, context) over the previous round's part files; it returns the round whose rows
are its drops. The runner then routes the drops by unit (dedup/<stage>/drops/, sorted by ref),
writes the stage's _SUCCESS (a finished stage is skipped on rerun over the same inputs; an
unfinished one resumes from its last finished round), resolves every dropped document to the
document finally kept for it and counts cluster sizes (dedup/resolved/, `Resolver`, also in
rounds), and an apply phase per unit removes the drops from each staged shard, writes output/
(without the `internal` columns, with `cluster_size`) and the rejects.

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

from babelmill.pipeline.core.rounds import (
    RoundResult,
    hash_part,
    partitions_for,
    read_success,
    run_round,
    unit_part,
)
from babelmill.pipeline.core.stage import Stage
from babelmill.pipeline.dedup.refs import unit_of

DROPS_SCHEMA = pa.schema([("ref", pa.int64()), ("kept_ref", pa.int64()), ("kept_id", pa.string()),
                          ("reason", pa.string()), ("detail", pa.string())])
#: memory one reduce task should hold (partitions are added as the data grows; see rounds.py)
DEFAULT_REDUCE_MB = 512


class GlobalStage(Stage):
    """Base class of global stages; see the module docstring for the contract."""

    #: columns produced only for the global part; not written to the final output
    internal: tuple[str, ...] = ()
    #: whether the stage implements the index methods below (dedup.index, dedup.against)
    supports_index: bool = False
    #: key rows per document and bytes per key row, to size the first round's partitions
    key_rows_per_doc: int = 1
    key_row_bytes: int = 64

    def key_rows(self, shard: Path, unit_index: int, excluded: np.ndarray) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def reduce(self, table: pa.Table) -> pa.Table:  # pragma: no cover
        raise NotImplementedError

    def run_global(self, rounds: GlobalRounds) -> RoundResult:
        """The stage's rounds; returns the round whose rows are its drops (DROPS_SCHEMA).
        By default one round: key_rows on every shard, reduce per partition."""
        return rounds.run("keys", rounds.shard_tasks(), "_reduce_keys",
                          rows=rounds.docs * self.key_rows_per_doc, row_bytes=self.key_row_bytes)

    def _reduce_keys(self, table: pa.Table, context: dict) -> pa.Table:
        return self.reduce(table)

    # -- the drops, routed by unit (the runner's last round of every global stage) --------------
    def _drops_rows(self, table: pa.Table, task: dict, context: dict) -> pa.Table:
        table = table.select(DROPS_SCHEMA.names).cast(DROPS_SCHEMA)
        ref = table.column("ref").to_numpy()
        if (ref < 0).any():  # documents of earlier runs are never dropped
            table = table.filter(pa.array(ref >= 0))
            ref = ref[ref >= 0]
        return table.append_column("part", pa.array(unit_part(ref)))

    def _drops_reduce(self, table: pa.Table, context: dict) -> pa.Table:
        """A drop whose kept document is in an earlier run says which run."""
        kept = table.column("kept_ref").to_numpy()
        if not (kept < 0).any():
            return table
        from babelmill.pipeline.dedup.index import against_run

        runs = context.get("against", [])
        details = table.column("detail").to_pylist()
        units = unit_of(kept)
        for i in np.flatnonzero(kept < 0):
            details[i] = f"{details[i]}, from earlier run {runs[against_run(int(units[i]))]}"
        return table.set_column(table.schema.get_field_index("detail"), "detail", pa.array(details, pa.string()))

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


class GlobalRounds:
    """The driver's side of one global stage: runs its rounds through the engine, numbered in
    order under dedup/<stage>/rounds/, each skipped when it finished before. Holds the task
    lists and the rounds' statistics only."""

    def __init__(self, eng, stage: GlobalStage, root: Path, shards: dict[int, Path], docs: int,
                 excluded: list[str], against: list[str], log=None):
        self.eng, self.stage, self.root = eng, stage, Path(root)
        self.shards, self.docs, self.excluded, self.against = shards, int(docs), excluded, against
        self.log = log
        params = getattr(stage, "params", None)
        self.memory_mb = int(getattr(params, "reduce_memory_mb", None) or DEFAULT_REDUCE_MB)
        self.min_parts = int(getattr(params, "num_parts", None) or 1)
        self.history: list[dict] = []
        self._n = 0

    def shard_tasks(self) -> list[dict]:
        """One map task per staged shard of this run and per index shard of an earlier run."""
        return [{"shard": str(path), "unit_index": unit, "index": unit < 0,
                 "excluded": [] if unit < 0 else list(self.excluded)} for unit, path in sorted(self.shards.items())]

    def partitions(self, rows: int, row_bytes: int) -> int:
        return partitions_for(rows, row_bytes, self.memory_mb, self.min_parts)

    def run(self, name: str, tasks: list[dict], reduce_name: str, rows: int, row_bytes: int,
            unit_keyed: bool = False, context: dict | None = None, directory: Path | None = None,
            owner=None, data_bytes: int | None = None) -> RoundResult:
        """One round: `tasks` mapped by the owner's (default: the stage's) methods, reduced by
        its `reduce_name`; the partitions are sized from `data_bytes` (the rows a reduce will
        hold, measured: an earlier round's `bytes`) or else `rows` x `row_bytes` (an estimate).
        No input rows: nothing runs."""
        self._n += 1
        d = directory or self.root / "rounds" / f"{self._n:02d}-{name}"
        parts = self.partitions(1 if data_bytes else rows, data_bytes or row_bytes)
        ctx = {"against": self.against, "shards": {str(k): str(v) for k, v in self.shards.items()}, **(context or {})}
        res = run_round(self.eng, owner or self.stage, d, reduce_name, tasks if rows else [], parts, unit_keyed, ctx,
                        self.log)
        info = read_success(d) or {}
        self.history.append({"round": d.name, "partitions": res.num_partitions, "rows_in": res.stats.get("rows_in", 0),
                             "rows": res.rows, "seconds": info.get("seconds"),
                             "peak_rss_mb": res.stats.get("peak_rss_mb"), "task_mb": res.stats.get("task_mb")})
        return res

    def drops(self, result: RoundResult) -> RoundResult:
        """The stage's drops routed by unit, sorted by ref: dedup/<stage>/drops/."""
        return self.run("drops", result.tasks("_drops_rows"), "_drops_reduce", rows=result.rows, row_bytes=200,
                        unit_keyed=True, directory=self.root / "drops")


class Resolver:
    """Cluster sizes and root ids over all global stages, in rounds (the driver holds none of
    them): every document dropped by any stage is resolved to the document finally kept for it
    (an exact duplicate of a document that near dedup dropped stands for the near cluster's
    kept document), and every finally kept document gets the number of input documents it
    stands for. Result: dedup/resolved/, keyed by unit: (ref, cluster_size, root_id), with
    cluster_size set for kept documents of a cluster and root_id (the kept document's id) for
    dropped ones. `cluster_sizes` below is the single-process oracle the tests compare with."""

    name = "resolve"

    # chaining: a mapping x -> root through the next stage's drops (root -> new root)
    def _mapped_rows(self, table, task, context):
        root = table.column("kept_ref").to_numpy()
        return pa.table({"part": pa.array(hash_part(root)), "key": pa.array(root), "ref": table.column("ref"),
                         "kept_id": table.column("kept_id").cast(pa.string()), "drop": pa.array(np.zeros(len(root), bool))})

    def _drop_rows(self, table, task, context):
        ref = table.column("ref").to_numpy()
        return pa.table({"part": pa.array(hash_part(ref)), "key": pa.array(ref), "ref": table.column("kept_ref"),
                         "kept_id": table.column("kept_id").cast(pa.string()), "drop": pa.array(np.ones(len(ref), bool))})

    def _chain(self, table, context):
        """Per key: if this stage dropped the key (key -> k), everything mapped to the key and
        the key itself now map to k; else the mappings stay."""
        key = table.column("key").to_numpy()
        is_drop = table.column("drop").to_numpy(zero_copy_only=False)
        target = table.column("ref").to_numpy()  # for drop rows: the new root
        ids = table.column("kept_id")
        drop_keys, first = np.unique(key[is_drop], return_index=True)
        didx = np.flatnonzero(is_drop)[first]
        m = ~is_drop
        mk = key[m]
        pos = np.searchsorted(drop_keys, mk)
        hit = np.zeros(len(mk), bool)
        ok = pos < len(drop_keys)
        hit[ok] = drop_keys[pos[ok]] == mk[ok]
        new_root = mk.copy()
        new_id = np.array(ids.filter(pa.array(m)).to_pylist(), dtype=object)
        new_root[hit] = target[didx[pos[hit]]]
        drop_ids = np.array(ids.take(pa.array(didx)).to_pylist(), dtype=object)
        new_id[hit] = drop_ids[pos[hit]]
        refs = np.concatenate([table.column("ref").to_numpy()[m], drop_keys])
        roots = np.concatenate([new_root, target[didx]])
        out_ids = np.concatenate([new_id, drop_ids])
        return pa.table({"ref": pa.array(refs, pa.int64()), "kept_ref": pa.array(roots, pa.int64()),
                         "kept_id": pa.array(list(out_ids), pa.string())})

    # the result, keyed by unit
    def _resolved_rows(self, table, task, context):
        ref = table.column("ref").to_numpy()
        root = table.column("kept_ref").to_numpy()
        own = root >= 0  # documents kept in an earlier run are not in this run's output
        n, k = len(ref), int(own.sum())
        return pa.table({
            "part": pa.array(np.concatenate([unit_part(ref), unit_part(root[own])])),
            "ref": pa.array(np.concatenate([ref, root[own]]), pa.int64()),
            "root_id": pa.concat_arrays([table.column("kept_id").combine_chunks().cast(pa.string()),
                                         pa.nulls(k, pa.string())]),
            "member": pa.array(np.concatenate([np.zeros(n, bool), np.ones(k, bool)])),
        })

    def _resolve(self, table, context):
        member = table.column("member").to_numpy(zero_copy_only=False)
        ref = table.column("ref").to_numpy()
        roots, counts = np.unique(ref[member], return_counts=True)
        dropped = table.filter(pa.array(~member))
        return pa.table({
            "ref": pa.concat_arrays([dropped.column("ref").combine_chunks(), pa.array(roots, pa.int64())]),
            "cluster_size": pa.concat_arrays([pa.nulls(dropped.num_rows, pa.int32()), pa.array(counts + 1, pa.int32())]),
            "root_id": pa.concat_arrays([dropped.column("root_id").combine_chunks(), pa.nulls(len(roots), pa.string())]),
        })


def resolve(eng, root: Path, drops: list[RoundResult], log=None) -> tuple[RoundResult, list[dict]]:
    """dedup/resolved/ from the stages' unit-keyed drops, in stage order."""
    resolver = Resolver()
    rounds = GlobalRounds(eng, resolver, Path(root) / "_resolve", {}, 0, [], [], log)
    mapped = drops[0]
    for nxt in drops[1:]:
        tasks = mapped.tasks("_mapped_rows") + nxt.tasks("_drop_rows")
        mapped = rounds.run("chain", tasks, "_chain", rows=mapped.rows + nxt.rows, row_bytes=120)
    out = rounds.run("resolved", mapped.tasks("_resolved_rows"), "_resolve", rows=2 * mapped.rows, row_bytes=100,
                     unit_keyed=True, directory=Path(root) / "resolved")
    return out, rounds.history


def cluster_sizes(drops: list[pa.Table]) -> dict[int, int]:
    """Documents each kept document stands for (itself + everything folded into it, through
    the global stages in order: exact dedup first, so near clusters absorb exact groups); only
    sizes > 1 are returned. Single-process: the oracle of `Resolver` in the tests."""
    size: dict[int, int] = {}
    for d in drops:
        for ref, kept in zip(d.column("ref").to_pylist(), d.column("kept_ref").to_pylist(), strict=True):
            size[kept] = size.get(kept, 1) + size.pop(ref, 1)
    return {k: v for k, v in size.items() if v > 1}


def is_global(stage) -> bool:
    return isinstance(stage, GlobalStage)


__all__ = ["DROPS_SCHEMA", "GlobalRounds", "GlobalStage", "Resolver", "cluster_sizes", "is_global", "resolve"]
