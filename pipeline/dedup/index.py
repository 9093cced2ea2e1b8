"""The dedup index of a finished run, and deduplicating new input against earlier runs.

A run with global (dedup) stages writes RUN/dedup/index/: one Parquet shard per work unit
(written by the apply phase, on the engine's workers) and `index.json` (written last by the
driver: the parameters the index was built with and its shards). Every input document of the
run is in it, kept or dropped, so that deduplicating B against A links a document of B to the
same documents of A as one run over A and B would; `root_id` names the kept document a dropped
one stands for (what a new duplicate's `kept_id` should point to). Columns:

  id, root_id            document id; id of its kept document (null if it was kept)
  dedup_hash             exact dedup: 16-byte hash of the normalised text
  minhash, minhash_chars near dedup: signature and whether it was shingled by characters
  dedup_units            near dedup with `verify: alignment`: the unit sequence it aligns

`--against EARLIER_RUN` (config `dedup.against`) feeds these shards into the same shuffles as
the new documents, with negative refs (so an earlier run's document always sorts first and is
the one kept), and no earlier document is ever dropped. An index built with other shingling,
LSH or verification parameters, or another normaliser version, is refused: its keys would
not meet the new ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.pipeline.io.writers import atomic_write_json, atomic_write_parquet
from babelmill.yamlconf import ConfigError

log = logging.getLogger(__name__)

INDEX_DIR = "index"
INDEX_FILE = "index.json"
INDEX_VERSION = 1
#: version of the exact-dedup text normalisation (babelmill.text.normalize_for_dedup); bump on change
NORMALISER_VERSION = 1
# negative unit numbers for index shards: earlier run r, shard k -> BASE + r * RUN_STRIDE + k
_BASE = -(1 << 30)
_RUN_STRIDE = 1 << 20


def index_dir(run_root: Path) -> Path:
    return Path(run_root) / "dedup" / INDEX_DIR


def shard_path(run_root: Path, unit_index: int) -> Path:
    return index_dir(run_root) / f"{unit_index:06d}.parquet"


def against_unit(run_i: int, shard_i: int) -> int:
    """The (negative) unit number under which shard `shard_i` of earlier run `run_i` enters the
    global phases; refs are (unit << 32) | row as for the run's own units, so they sort first."""
    if shard_i >= _RUN_STRIDE or run_i >= 1 << 9:
        raise ConfigError(f"too many earlier runs or index shards ({run_i}, {shard_i})")
    return _BASE + run_i * _RUN_STRIDE + shard_i


def is_against(unit: int) -> bool:
    return unit < 0


def against_run(unit: int) -> int:
    """Which earlier run (its position in dedup.against) a negative unit number comes from."""
    return (unit - _BASE) // _RUN_STRIDE


def check_supported(global_stages, what: str) -> None:
    """Every global stage must implement the index methods for `what` (dedup.index/against)."""
    lacking = [st.name for st in global_stages if not st.supports_index]
    if lacking:
        raise ConfigError(f"{what}: global stage(s) {', '.join(lacking)} cannot be indexed or matched against "
                          "earlier runs (no index methods, see pipeline/core/global_stage.py)")


def stage_key_params(global_stages) -> dict:
    """What must be equal for two runs' dedup keys to meet, per global stage."""
    return {st.name: st.index_params() for st in global_stages}


def root_ids(resolved: pa.Table, refs: np.ndarray) -> pa.Array:
    """Per ref of a unit: the id of the kept document it finally stands for (through exact then
    near drops), null if it was kept; from the unit's rows of dedup/resolved/."""
    out = np.full(len(refs), None, dtype=object)
    dropped = resolved.filter(resolved.column("root_id").is_valid())
    if dropped.num_rows:
        pos = np.searchsorted(refs, dropped.column("ref").to_numpy())
        out[pos] = dropped.column("root_id").to_pylist()
    return pa.array(list(out), pa.string())


def write_shard(run_root: Path, unit_index: int, table: pa.Table, refs: np.ndarray, roots: pa.Array,
                global_stages) -> None:
    """The index shard of one staged unit (all its documents), atomically; `roots`: root_ids()."""
    cols = {"id": table.column("id").cast(pa.string()), "root_id": roots}
    for st in global_stages:
        cols.update(st.index_columns(table))
    # random hashes neither compress nor repeat: a fast codec, dictionaries for the ids only
    atomic_write_parquet(shard_path(run_root, unit_index), pa.table(cols), compression="lz4", fsync=False,
                         use_dictionary=["id", "root_id"])


def finish(run_root: Path, units, global_stages) -> dict:
    """index.json, written once every shard exists."""
    shards = []
    for i, u in enumerate(units):
        p = shard_path(run_root, i)
        if not p.exists():
            raise RuntimeError(f"{p}: index shard of unit {u.unit_id} missing after the apply phase")
        shards.append({"unit": u.unit_id, "file": p.name, "rows": pq.ParquetFile(p).metadata.num_rows})
    meta = {"version": INDEX_VERSION, "normaliser": NORMALISER_VERSION, "run": str(Path(run_root).resolve()),
            "stages": stage_key_params(global_stages), "shards": shards}
    atomic_write_json(index_dir(run_root) / INDEX_FILE, meta)
    return meta


def load_against(dirs: list[str], global_stages, own_root: Path) -> list[dict]:
    """Validated earlier indexes, in order: [{"run", "dir", "fingerprint", "shards": [(unit, path)]}]."""
    if not dirs:
        return []
    check_supported(global_stages, "dedup.against")
    want = stage_key_params(global_stages)
    out = []
    own = Path(own_root).resolve()
    for r, d in enumerate(dirs):
        root = Path(d)
        meta_path = index_dir(root) / INDEX_FILE
        if root.resolve() == own:
            raise ConfigError(f"dedup.against: {d} is this run's own output directory")
        if not meta_path.is_file():
            what = "does not exist" if not root.exists() else "has no dedup index"
            raise ConfigError(f"dedup.against: {d} {what} ({meta_path} missing): give the output directory of a "
                              "finished dedup run made with dedup.index: true (babelmill dedup --index), or index "
                              f"it now with `babelmill dedup-index {d}`")
        text = meta_path.read_text(encoding="utf-8")
        meta = json.loads(text)
        if meta.get("version") != INDEX_VERSION or meta.get("normaliser") != NORMALISER_VERSION:
            raise ConfigError(f"dedup.against: {d} was indexed by another babelmill version (index version "
                              f"{meta.get('version')}, normaliser {meta.get('normaliser')}; this one: "
                              f"{INDEX_VERSION}, {NORMALISER_VERSION}): rerun it, or deduplicate without it")
        for name, params in want.items():
            theirs = meta.get("stages", {}).get(name)
            if theirs is None:
                raise ConfigError(f"dedup.against: {d} has no {name} index (that run did not run {name})")
            diff = {k: (theirs.get(k), v) for k, v in params.items() if theirs.get(k) != v}
            if diff:
                shown = ", ".join(f"{k}: {a!r} there, {b!r} here" for k, (a, b) in diff.items())
                raise ConfigError(f"dedup.against: {d} was deduplicated with other {name} parameters ({shown}); "
                                  "its index cannot be matched: use the same parameters")
        shards = [(against_unit(r, k), index_dir(root) / s["file"]) for k, s in enumerate(meta["shards"])]
        for _, p in shards:
            if not p.is_file():
                raise ConfigError(f"dedup.against: {p} listed in {meta_path} is missing")
        out.append({"run": r, "dir": str(root), "fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16],
                    "shards": shards})
    return out


def build_for_run(run_root: Path | str, quiet: bool = False) -> dict:
    """Index a finished dedup run that was made without `dedup.index` (`babelmill dedup-index`):
    from its staged shards and drops, the same shards the apply phase would have written.
    `quiet`: no progress bar (a progress bar on stderr, on a terminal only, as the run's)."""
    import types

    from tqdm import tqdm

    from babelmill.pipeline.config import build_stages
    from babelmill.pipeline.runner.layout import RunLayout
    from babelmill.pipeline.runner.lock import run_dir_lock
    from babelmill.pipeline.runner.run import load_run_config

    root = Path(run_root)
    layout = RunLayout(root)
    inputs_path = root / "dedup" / "_inputs.json"
    if not layout.config.is_file() or not inputs_path.is_file():
        raise ConfigError(f"{root}: not the output directory of a dedup run (no run_config.yaml or dedup/_inputs.json)")
    cfg = load_run_config(layout)
    from babelmill.pipeline.core.global_stage import is_global

    stages = [st for st in build_stages(cfg, layout.config) if is_global(st)]
    check_supported(stages, "dedup-index")
    units = [types.SimpleNamespace(unit_id=u) for u, _ in json.loads(inputs_path.read_text())["units"]]
    missing = [st.name for st in stages if not (layout.dedup_dir(st.name) / "_SUCCESS").exists()]
    if missing:
        raise ConfigError(f"{root}: its dedup phases did not finish ({', '.join(missing)}): rerun it first")
    from babelmill.pipeline.core.rounds import read_unit_rows

    with run_dir_lock(root), tqdm(total=len(units), desc="dedup index", unit="unit", file=sys.stderr,
                                  disable=True if quiet else None, dynamic_ncols=True) as bar:
        from babelmill.pipeline.core.context import RunContext

        ctx = RunContext.from_manifest(json.loads(layout.manifest.read_text()), root) if layout.manifest.is_file() \
            else None  # the registry the run used, whatever the environment says now
        for st in stages:
            st.ensure_setup(ctx)
        for i, u in enumerate(units):
            staged = layout.staged(u.unit_id)
            if not staged.is_file():
                raise ConfigError(f"{staged}: staged shard of unit {u.unit_id} is missing: the run cannot be indexed "
                                  "without reprocessing it")
            table = pq.read_table(staged)
            from babelmill.pipeline.dedup.refs import make_refs

            refs = make_refs(i, table.num_rows)
            resolved = read_unit_rows(root / "dedup" / "resolved", i)
            roots = root_ids(resolved, refs) if resolved is not None else pa.nulls(len(refs), pa.string())
            write_shard(root, i, table, refs, roots, stages)
            bar.update(1)
            log.debug("indexed %d/%d units of %s", i + 1, len(units), root)
        return finish(root, units, stages)


__all__ = ["INDEX_FILE", "NORMALISER_VERSION", "against_run", "against_unit", "build_for_run", "check_supported",
           "finish", "index_dir", "is_against", "load_against", "root_ids", "shard_path", "stage_key_params",
           "write_shard"]
