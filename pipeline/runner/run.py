"""Orchestrate one run: validate, plan units, skip finished ones, run the rest on an engine,
and write the manifest.

Resumability: a unit is finished when its stats file exists (written after its output and
rejects shards were renamed into place). A rerun of the same config skips finished units and
produces the same files as an uninterrupted run; a rerun with a different config, or over
inputs that changed, refuses to mix results unless asked to start over (`overwrite=True`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from babelmill.pipeline.config import ConfigError, PipelineConfig, build_stages
from babelmill.pipeline.engines import get_engine
from babelmill.pipeline.engines.progress import UnitProgress
from babelmill.pipeline.io.readers import plan_units
from babelmill.pipeline.io.writers import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_parquet,
    clean_tmp_files,
)
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.manifest import build_manifest
from babelmill.pipeline.runner.worker import RunSpec, read_options

log = logging.getLogger("babelmill.run")


class RunStateError(RuntimeError):
    """The run directory holds results that cannot be combined with this run."""


def _prepare_run_dir(cfg: PipelineConfig, layout: RunLayout, fingerprint: str, overwrite: bool) -> None:
    previous = layout.config
    if previous.exists():
        old = yaml.safe_load(previous.read_text()) or {}
        old_fp = old.get("_fingerprint")
        if old_fp != fingerprint and not overwrite:
            raise RunStateError(
                f"{layout.root} holds a run made with a different configuration "
                f"(fingerprint {old_fp} vs {fingerprint}); pass --overwrite to start over, "
                "or choose another output directory"
            )
        if overwrite:  # start over, also when only the inputs changed
            shutil.rmtree(layout.root)
    elif overwrite and layout.root.exists() and any(layout.root.iterdir()):
        if not layout.units_dir.is_dir():  # never delete a folder that is not a run of ours
            raise RunStateError(f"--overwrite: {layout.root} is not a babelmill run directory; not deleting it")
        shutil.rmtree(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    for d in (layout.output_dir, layout.rejects_dir, layout.units_dir, layout.staged_dir):
        d.mkdir(exist_ok=True)
        clean_tmp_files(d)
    clean_tmp_files(layout.root / "dedup")
    doc = {"_fingerprint": fingerprint, **cfg.model_dump(mode="json")}
    atomic_write_bytes(layout.config, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode())


def _progress(quiet, directory, total, already, desc):
    import contextlib

    return contextlib.nullcontext() if quiet else UnitProgress(directory, total, already, desc)


def _run_global_phases(eng, layout: RunLayout, units, global_stages, quiet: bool) -> None:
    """Each global stage: shuffle key rows through the engine, reduce per partition, finalize
    on the driver into drops.parquet; a _SUCCESS marker makes a finished phase skip on rerun."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from babelmill.pipeline.runner.apply import SIZES_FILE
    from babelmill.pipeline.stages.dedup import cluster_sizes

    shards = {i: layout.staged(u.unit_id) for i, u in enumerate(units)}
    previous: list[str] = []
    all_drops = []
    for st in global_stages:
        d = layout.dedup_dir(st.name)
        drops_path = d / "drops.parquet"
        if not (d / "_SUCCESS").exists():
            t0 = time.time()
            parts_dir = d / "parts"
            if parts_dir.exists():
                shutil.rmtree(parts_dir)
            parts_dir.mkdir(parents=True)
            tasks = [{"shard": str(shards[i]), "unit_index": i, "excluded": list(previous)} for i in range(len(units))]
            eng.shuffle_reduce(st, tasks, str(parts_dir))
            parts = [pq.read_table(p) for p in sorted(parts_dir.glob("part-*.parquet"))]
            st.ensure_setup()
            drops = st.finalize(parts, shards)
            drops = drops.append_column("stage", pa.array([st.name] * drops.num_rows, pa.string()))
            atomic_write_parquet(drops_path, drops)
            atomic_write_json(d / "_SUCCESS", {"drops": drops.num_rows, "seconds": round(time.time() - t0, 3)})
            if not quiet:
                log.warning("%s: %d duplicates found in %.1f s", st.name, drops.num_rows, time.time() - t0)
        previous.append(str(drops_path))
        all_drops.append(pq.read_table(drops_path))
    sizes = cluster_sizes(all_drops)
    table = pa.table({"ref": pa.array(list(sizes), pa.int64()), "cluster_size": pa.array(list(sizes.values()), pa.int32())})
    atomic_write_parquet(layout.root / "dedup" / SIZES_FILE, table)


def run_pipeline(cfg: PipelineConfig, engine: str | None = None, overwrite: bool = False, quiet: bool = False) -> dict:
    started = time.time()
    engine_name = engine or cfg.engine.name
    fingerprint = cfg.fingerprint()
    layout = RunLayout(Path(cfg.output.dir), cfg.output.format)
    stages = build_stages(cfg)  # fail fast on the driver, before any worker starts
    _prepare_run_dir(cfg, layout, fingerprint, overwrite)

    units = plan_units(cfg.input.paths, read_options(cfg))
    ids = [u.unit_id for u in units]
    if len(set(ids)) != len(ids):
        raise ConfigError("two inputs map to the same work unit id; rename or move one of them")

    global_stages = [st for st in stages if getattr(st, "is_global", False)]
    first_global = next((i for i, st in enumerate(stages) if getattr(st, "is_global", False)), len(stages))
    if any(not getattr(st, "is_global", False) for st in stages[first_global:]):
        raise ConfigError("global stages (dedup_exact, dedup_near) must come after all other stages")

    def map_marker(u):
        return layout.staged_stats(u.unit_id) if global_stages else layout.unit_stats(u.unit_id)

    done, pending = [], []
    for u in units:
        marker = map_marker(u)
        if marker.exists():
            stats = json.loads(marker.read_text())
            if stats.get("fingerprint") != u.fingerprint():
                raise RunStateError(
                    f"input {u.source} changed since unit {u.unit_id} was processed; pass --overwrite to start over"
                )
            done.append(u)
        else:
            pending.append(u)
    marker_dir = layout.staged_dir / "_units" if global_stages else layout.units_dir
    stale = {p.stem for p in marker_dir.glob("*.json")} - set(ids) if marker_dir.is_dir() else set()
    if stale:
        raise RunStateError(f"{layout.root} has results for inputs no longer given: {sorted(stale)[:3]} ...")
    if done and not quiet:
        log.warning("resuming: %d of %d work units already done in %s, skipping them", len(done), len(units), layout.root)

    spec = RunSpec(config=cfg.model_dump(mode="json"), run_dir=str(layout.root), config_fingerprint=fingerprint)
    eng = get_engine(engine_name)(cfg.engine)
    desc = f"{cfg.name} [{engine_name}]"
    if pending:
        with _progress(quiet, marker_dir, len(units), len(done), desc):
            eng.run_units(spec, pending)
    if global_stages:
        _run_global_phases(eng, layout, units, global_stages, quiet)
        index = {u.unit_id: i for i, u in enumerate(units)}
        apply_spec = RunSpec(config=spec.config, run_dir=spec.run_dir, config_fingerprint=fingerprint,
                             phase="apply", unit_index=index)
        todo = [u for u in units if not layout.unit_stats(u.unit_id).exists()]
        if todo:
            with _progress(quiet, layout.units_dir, len(units), len(units) - len(todo), f"{desc} apply dedup"):
                eng.run_units(apply_spec, todo)

    unit_stats = [json.loads(layout.unit_stats(u.unit_id).read_text()) for u in units]
    manifest = build_manifest(
        cfg=cfg,
        fingerprint=fingerprint,
        engine=engine_name,
        units=units,
        unit_stats=unit_stats,
        resumed=len(done),
        started=started,
        stage_descriptions=[s.describe() for s in stages],
    )
    if not manifest["counts"]["balanced"]:
        raise RuntimeError(f"accounting mismatch in {layout.root}: {manifest['counts']}")
    atomic_write_json(layout.manifest, manifest)
    if cfg.balance is not None:
        from babelmill.pipeline.balance.run import run_balance

        # The balanced corpus is derived from the curated one and the balance config alone, so an
        # edited `balance:` section rebuilds it (with a warning) instead of refusing the run.
        run_balance(layout.root, cfg.balance, engine_name, cfg.engine, overwrite=True, quiet=quiet)
    return manifest
