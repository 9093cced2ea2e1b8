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
from babelmill.pipeline.io.writers import atomic_write_bytes, atomic_write_json, clean_tmp_files
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
        if old_fp != fingerprint:
            if not overwrite:
                raise RunStateError(
                    f"{layout.root} holds a run made with a different configuration "
                    f"(fingerprint {old_fp} vs {fingerprint}); pass --overwrite to start over, "
                    "or choose another output directory"
                )
            shutil.rmtree(layout.root)
    elif overwrite and layout.root.exists() and any(layout.root.iterdir()):
        if not layout.units_dir.is_dir():  # never delete a folder that is not a run of ours
            raise RunStateError(f"--overwrite: {layout.root} is not a babelmill run directory; not deleting it")
        shutil.rmtree(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    for d in (layout.output_dir, layout.rejects_dir, layout.units_dir):
        d.mkdir(exist_ok=True)
        clean_tmp_files(d)
    doc = {"_fingerprint": fingerprint, **cfg.model_dump(mode="json")}
    atomic_write_bytes(layout.config, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode())


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

    done, pending = [], []
    for u in units:
        stats_path = layout.unit_stats(u.unit_id)
        if stats_path.exists():
            stats = json.loads(stats_path.read_text())
            if stats.get("fingerprint") != u.fingerprint():
                raise RunStateError(
                    f"input {u.source} changed since unit {u.unit_id} was processed; pass --overwrite to start over"
                )
            done.append(u)
        else:
            pending.append(u)
    stale = {p.stem for p in layout.units_dir.glob("*.json")} - set(ids)
    if stale:
        raise RunStateError(f"{layout.root} has results for inputs no longer given: {sorted(stale)[:3]} ...")
    if done and not quiet:
        log.warning("resuming: %d of %d work units already done in %s, skipping them", len(done), len(units), layout.root)

    spec = RunSpec(config=cfg.model_dump(mode="json"), run_dir=str(layout.root), config_fingerprint=fingerprint)
    if pending:
        eng = get_engine(engine_name)(cfg.engine)
        desc = f"{cfg.name} [{engine_name}]"
        if quiet:
            eng.run_units(spec, pending)
        else:
            with UnitProgress(layout.units_dir, len(units), len(done), desc):
                eng.run_units(spec, pending)

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
    return manifest
