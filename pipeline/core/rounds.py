"""Rounds: how a global stage's work runs on the engine, one shuffle at a time.

A round is one map -> shuffle -> reduce through the engine (in-process, Ray Data's groupby,
Beam's GroupByKey; engines only move rows):

- map: each task (a staged shard of the run, an index shard of an earlier run, or some part
  files of an earlier round) becomes a table with an int32 `part` column. `part` is a non-negative
  hash of the grouping key, not a partition number: the round routes a row to partition
  `part % num_partitions`, so rows with the same key meet for any partition count, and the
  count can follow the data (see `partitions_for`);
- reduce: once per partition, on a worker; it returns a table (or a table and a dict of
  integer statistics: edges changed, ...), written atomically to
  <round dir>/part-NNNNN.parquet with the statistics in the file's metadata.

The driver only sees task lists and per-partition statistics, O(units + partitions), never a
document: what the rounds compute stays in their part files. A finished round has a `_SUCCESS`
file with its statistics; a rerun skips it, and a round killed half-way is redone from its
inputs, so a killed run resumes from the last finished round with identical results (every
reduce is a pure function of the rows of its partition, sorted before use).

Outputs keyed by unit (a stage's drops, the cluster sizes) are routed with `part = unit`
(`unit_part`) and sorted by ref in small row groups, so the apply task of one unit reads its
rows with `read_unit_rows` (one file, the row groups of its ref range).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.dedup.refs import ROW_BITS
from babelmill.pipeline.io.writers import atomic_write_json, tmp_name

STATS_KEY = b"babelmill.round_stats"
SUCCESS = "_SUCCESS"
#: rows per row group of unit-keyed outputs: an apply task reads only the groups of its unit
UNIT_ROW_GROUP = 65_536
#: per-partition statistics a round reports as their maximum (the others are summed)
MAX_STATS = ("peak_rss_mb", "task_mb")
#: map tasks of a round over an earlier round's part files (see RoundResult.tasks)
MAX_MAP_TASKS = 64


def hash_part(keys: np.ndarray) -> np.ndarray:
    """A non-negative int32 hash of int64 keys (refs, node ids), for the `part` column."""
    from babelmill.text import splitmix64

    with np.errstate(over="ignore"):
        h = splitmix64(keys.astype(np.int64).view(np.uint64))
    return (h >> np.uint64(33)).astype(np.int32)


def unit_part(refs: np.ndarray) -> np.ndarray:
    """`part` of rows keyed by unit (unit numbers of earlier runs are negative: folded)."""
    return np.mod(refs >> np.int64(ROW_BITS), np.int64(1 << 30)).astype(np.int32)


def _status_mb(key: str) -> float | None:
    """A memory figure of this process from /proc/self/status (Linux), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def start_task_memory() -> float | None:
    """Reset this process's peak RSS (VmHWM, Linux `clear_refs` 5) and return its current RSS:
    called by an engine before it reads a partition's rows, so that the reduce can report the
    memory this one partition added (`task_mb`), not the worker's lifetime peak (a pooled Ray
    worker that ran a map task or a larger reduce before). None where Linux does not allow it.
    Arrow's allocator first returns the memory it kept from earlier partitions, so that the
    starting RSS is what the worker really holds and the difference bounds what this partition
    used."""
    pa.default_memory_pool().release_unused()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


def partitions_for(rows: int, row_bytes: int, memory_mb: int, minimum: int = 1, maximum: int = 4096) -> int:
    """Partitions such that one reduce task stays near `memory_mb`, at least `minimum`."""
    # x8: measured on bench/dedup_scale.py, a reduce's peak RSS is ~8x its rows' Arrow size
    # (the partition's pieces and their concatenation, the sort, the output, the writer)
    need = math.ceil(8 * rows * row_bytes / (memory_mb * 2**20)) if rows else 1
    return int(min(maximum, max(minimum, need, 1)))


@dataclass
class RoundSpec:
    """What an engine needs to run one round; pickled to the workers with its owner (the
    stage, whose methods map and reduce)."""

    owner: object
    reduce_name: str
    out_dir: str
    num_partitions: int
    unit_keyed: bool = False
    context: dict = field(default_factory=dict)

    def map(self, task: dict) -> pa.Table:
        owner = self.owner
        if "files" in task:
            rows = pa.concat_tables([pq.read_table(f) for f in task["files"]], promote_options="permissive")
            t = getattr(owner, task["map"])(rows, task, self.context)
        elif task.get("index"):  # a shard of an earlier run's dedup index (dedup.against)
            t = owner.index_key_rows(Path(task["shard"]), task["unit_index"])
        else:
            excl = excluded_refs(task.get("excluded", []), task["unit_index"])
            t = owner.key_rows(Path(task["shard"]), task["unit_index"], excl)
        part = t.column("part").to_numpy().astype(np.int64)
        return t.set_column(t.schema.get_field_index("part"), "part",
                            pa.array(np.mod(part, self.num_partitions).astype(np.int32)))

    def reduce(self, part: int, table: pa.Table, base_mb: float | None = None) -> dict:
        """`base_mb`: this process's RSS before the partition's rows were read
        (start_task_memory); with it the statistics hold `task_mb`, the partition's peak
        memory above that (reading its rows and the reduce, up to its output table)."""
        from babelmill.pipeline.runner.worker import peak_rss_mb

        out = getattr(self.owner, self.reduce_name)(table.drop_columns(["part"]), self.context)
        stats = {}
        if isinstance(out, tuple):
            out, stats = out
        stats = {**{k: int(v) for k, v in stats.items()}, "rows": out.num_rows, "rows_in": table.num_rows,
                 "bytes": out.nbytes, "peak_rss_mb": peak_rss_mb()}
        if self.unit_keyed and out.num_rows:
            out = out.sort_by("ref")
        if base_mb is not None and (peak := _status_mb("VmHWM")) is not None:  # before the write's buffers
            stats["task_mb"] = round(peak - base_mb, 1)
        out = out.replace_schema_metadata({**(out.schema.metadata or {}), STATS_KEY: json.dumps(stats).encode()})
        # intermediate: fast codec, no dictionary pages (read once, by the next round: on the
        # pairs with signatures and unit sequences attached they halve the write speed), no fsync (a
        # round without its _SUCCESS is redone); written under a temp name and renamed, straight
        # to the file (no second copy in memory)
        path = Path(self.out_dir) / f"part-{part:05d}.parquet"
        tmp = tmp_name(path)
        pq.write_table(out, tmp, compression="lz4", use_dictionary=False,
                       row_group_size=UNIT_ROW_GROUP if self.unit_keyed else None)
        os.replace(tmp, path)
        return stats


@dataclass
class RoundResult:
    dir: Path
    num_partitions: int
    stats: dict

    @property
    def rows(self) -> int:
        return int(self.stats.get("rows", 0))

    def files(self) -> list[Path]:
        return sorted(self.dir.glob("part-*.parquet"))

    @property
    def bytes(self) -> int:
        """Arrow size of the round's output rows (what the next round reads)."""
        return int(self.stats.get("bytes", 0))

    def tasks(self, map_name: str, max_tasks: int = MAX_MAP_TASKS) -> list[dict]:
        """Map tasks over this round's part files (for the next round), at most `max_tasks`:
        every map task writes a piece for every partition, so their product is what a round's
        shuffle handles (and, on Ray, the files its reduce tasks open)."""
        files = [str(f) for f in self.files()]
        groups = np.array_split(np.arange(len(files)), min(len(files), max_tasks)) if files else []
        return [{"files": [files[i] for i in g], "map": map_name} for g in groups]


def read_success(round_dir: Path) -> dict | None:
    p = Path(round_dir) / SUCCESS
    return json.loads(p.read_text()) if p.is_file() else None


def run_round(eng, owner, round_dir: Path, reduce_name: str, tasks: list[dict], num_partitions: int,
              unit_keyed: bool = False, context: dict | None = None, log=None) -> RoundResult:
    """Run one round unless it finished before (its _SUCCESS); returns its statistics."""
    round_dir = Path(round_dir)
    done = read_success(round_dir)
    if done is not None:
        return RoundResult(round_dir, done["num_partitions"], done["stats"])
    t0 = time.time()
    if round_dir.exists():  # killed half-way: its partial parts are redone from the inputs
        shutil.rmtree(round_dir)
    round_dir.mkdir(parents=True)
    spec = RoundSpec(owner, reduce_name, str(round_dir), int(num_partitions), unit_keyed, context or {})
    if tasks:
        eng.shuffle_reduce(spec, tasks)
    stats: dict = {}
    for f in sorted(round_dir.glob("part-*.parquet")):
        meta = pq.read_schema(f).metadata or {}
        for k, v in json.loads(meta.get(STATS_KEY, b"{}")).items():
            stats[k] = max(stats.get(k, 0), v) if k in MAX_STATS else stats.get(k, 0) + v
    stats.setdefault("rows", 0)
    seconds = round(time.time() - t0, 3)
    atomic_write_json(round_dir / SUCCESS, {"num_partitions": int(num_partitions), "stats": stats,
                                            "tasks": len(tasks), "seconds": seconds})
    if log is not None:
        log.info("%s: %d rows into %d partitions -> %d rows in %.1f s", round_dir.name,
                 stats.get("rows_in", 0), num_partitions, stats["rows"], seconds)
    return RoundResult(round_dir, int(num_partitions), stats)


_SUCCESS_CACHE: dict[str, dict] = {}


def read_unit_rows(round_dir: Path | str, unit_index: int, columns: list[str] | None = None) -> pa.Table | None:
    """The rows of one unit from a unit-keyed round (sorted by ref); None if the round wrote none."""
    marker = Path(round_dir) / SUCCESS
    try:
        key = f"{marker}:{marker.stat().st_mtime_ns}"  # a directory reused by --overwrite is re-read
    except FileNotFoundError:
        raise RuntimeError(f"{round_dir}: round did not finish (no {SUCCESS})") from None
    meta = _SUCCESS_CACHE.get(key)
    if meta is None:
        meta = _SUCCESS_CACHE[key] = json.loads(marker.read_text())
    p = int(meta["num_partitions"])
    f = Path(round_dir) / f"part-{int(unit_part(np.array([unit_index << ROW_BITS]))[0]) % p:05d}.parquet"
    if not f.is_file():
        return None
    lo, hi = unit_index << ROW_BITS, ((unit_index + 1) << ROW_BITS) - 1
    return pq.read_table(f, columns=columns, filters=[("ref", ">=", lo), ("ref", "<=", hi)])


def read_rows(path: Path | str, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """Rows `rows` (sorted, unique) of a Parquet file, reading only the row groups that hold
    them: a reduce that needs a slice of a shard does not read the whole shard."""
    f = pq.ParquetFile(path)
    sizes = np.array([f.metadata.row_group(i).num_rows for i in range(f.num_row_groups)], np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    groups = np.unique(np.searchsorted(starts, rows, side="right") - 1)
    t = f.read_row_groups(groups.tolist(), columns=columns)
    base = np.concatenate([[0], np.cumsum(sizes[groups])])
    local = base[np.searchsorted(groups, np.searchsorted(starts, rows, side="right") - 1)]
    local = local + rows - starts[np.searchsorted(starts, rows, side="right") - 1]
    return t.take(pa.array(local))


def excluded_refs(round_dirs: list[str], unit_index: int) -> np.ndarray:
    """Refs of this unit already dropped by earlier global stages (their unit-keyed drops)."""
    out = [t.column("ref").to_numpy() for d in round_dirs
           if (t := read_unit_rows(d, unit_index, ["ref"])) is not None]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


__all__ = ["RoundResult", "RoundSpec", "excluded_refs", "hash_part", "partitions_for", "read_rows", "read_unit_rows",
           "run_round", "start_task_memory", "unit_part"]
