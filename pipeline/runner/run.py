"""Orchestrate one run: validate, plan units, skip finished ones, run the rest on an engine,
and write the manifest.

Resumability: a unit is finished when its stats file exists (written after its output and
rejects shards were renamed into place). A rerun of the same config skips finished units and
produces the same files as an uninterrupted run; a rerun with a different config, or over
inputs that changed, refuses to mix results unless asked to start over (`overwrite=True`).
That includes the global phases (deduplication): their decisions hold for the exact list of
units (ids and input fingerprints, in order) and the config they were computed over, recorded
in dedup/_inputs.json; a unit added to, removed from or changed in a run whose global phases
have produced anything is refused, since reusing them would drop documents as "duplicates"
of texts that are no longer there and keep duplicates of the new ones.

One process at a time: a run holds RUN_DIR/.lock (see lock.py) from before it cleans
temporary files until its manifest (and balance) is written.

One run context: the language registry and the layout are chosen once, here, from the config
(pipeline/core/context.py); every stage is set up with that context, on the driver and on the
workers (through RunSpec), the manifest records the registry (`registry`: path, fingerprint,
language codes) and balancing reads it from there.

Messages go to this module's logger: progress (resuming, duplicates found) at INFO, what the
counts alone would not show at WARNING; the CLI sets the level (`babelmill -q/-v`). `quiet`
only turns the progress bars off.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from babelmill.pipeline.config import ConfigError, PipelineConfig, build_stages
from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.global_stage import is_global
from babelmill.pipeline.dedup import index as dedup_index
from babelmill.pipeline.dedup.index import load_against
from babelmill.pipeline.engines import get_engine
from babelmill.pipeline.engines.progress import UnitProgress
from babelmill.pipeline.io.readers import plan_inputs
from babelmill.pipeline.io.writers import (
    atomic_write_bytes,
    atomic_write_json,
    clean_tmp_files,
)
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.lock import (
    LOCK_NAME,
    OutputDirError,
    RunDirInUseError,
    RunStateError,
    check_output_dir,
    run_dir_lock,
)
from babelmill.pipeline.runner.manifest import build_manifest
from babelmill.pipeline.runner.worker import RunSpec, read_options

log = logging.getLogger(__name__)

__all__ = ["OutputDirError", "RunDirInUseError", "RunStateError", "run_pipeline"]

#: what the global phases were computed over (see module docstring)
GLOBAL_INPUTS = "_inputs.json"
#: skipped inputs listed in the manifest (the count is always complete)
MAX_SKIPPED_LISTED = 1000


def _clear_run_dir(root: Path) -> None:
    """--overwrite: delete the previous run, but not the lock file this run holds (deleting it
    would let another process lock a new file next to ours)."""
    for p in root.iterdir():
        if p.name == LOCK_NAME:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _refuse_foreign_dir(layout: RunLayout) -> None:
    """--overwrite deletes only our own run directories (checked before the lock file is made)."""
    root = layout.root
    if root.is_dir() and not layout.config.exists() and not layout.units_dir.is_dir():
        if any(p.name != LOCK_NAME for p in root.iterdir()):
            raise RunStateError(f"--overwrite: {root} is not a babelmill run directory; not deleting it")


FINGERPRINT_KEY = "_fingerprint"  # the runner's own key in run_config.yaml, beside the config


def load_run_config(layout: RunLayout) -> PipelineConfig:
    """The validated config a finished run was made with (run_config.yaml, as written below)."""
    doc = yaml.safe_load(layout.config.read_text(encoding="utf-8")) or {}
    doc.pop(FINGERPRINT_KEY, None)
    return PipelineConfig.model_validate(doc)


def _prepare_run_dir(cfg: PipelineConfig, layout: RunLayout, fingerprint: str, overwrite: bool) -> None:
    previous = layout.config
    if previous.exists():
        old = yaml.safe_load(previous.read_text()) or {}
        old_fp = old.get(FINGERPRINT_KEY)
        if old_fp != fingerprint and not overwrite:
            raise RunStateError(
                f"{layout.root} holds a run made with a different configuration "
                f"(fingerprint {old_fp} vs {fingerprint}); pass --overwrite to start over, "
                "or choose another output directory"
            )
        if overwrite:  # start over, also when only the inputs changed
            _clear_run_dir(layout.root)
    elif overwrite and layout.root.exists() and any(p.name != LOCK_NAME for p in layout.root.iterdir()):
        _clear_run_dir(layout.root)  # a folder that is not a run of ours was refused by _refuse_foreign_dir
    layout.root.mkdir(parents=True, exist_ok=True)
    for d in (layout.output_dir, layout.rejects_dir, layout.units_dir, layout.staged_dir):
        d.mkdir(exist_ok=True)
        clean_tmp_files(d)
    clean_tmp_files(layout.root / "dedup")
    doc = {FINGERPRINT_KEY: fingerprint, **cfg.model_dump(mode="json")}
    atomic_write_bytes(layout.config, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode())


def _progress(quiet, directory, total, already, desc):
    """A progress bar over completion markers (not a log message: `quiet` turns it off)."""
    import contextlib

    return contextlib.nullcontext() if quiet else UnitProgress(directory, total, already, desc)


def _global_inputs(units, fps: dict[str, str], fingerprint: str, against: list[dict] | None = None) -> dict:
    """What the global phases' decisions depend on: the units in order, their input
    fingerprints, the config, and the indexes of earlier runs deduplicated against. `key`
    hashes all of it."""
    doc = {"config_fingerprint": fingerprint, "units": [[u.unit_id, fps[u.unit_id]] for u in units]}
    if against:
        doc["against"] = [[a["dir"], a["fingerprint"]] for a in against]
    doc["key"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]
    return doc


def _describe_change(old: dict, new: dict) -> str:
    before, after = dict(old.get("units", [])), dict(new["units"])
    added = [u for u in after if u not in before]
    removed = [u for u in before if u not in after]
    changed = [u for u in after if u in before and before[u] != after[u]]
    parts = [f"{len(v)} unit(s) {what} ({', '.join(v[:3])}{', ...' if len(v) > 3 else ''})"
             for what, v in (("added", added), ("removed", removed), ("changed", changed)) if v]
    if not parts and old.get("config_fingerprint") != new["config_fingerprint"]:
        parts.append("the configuration changed")
    if not parts and old.get("against") != new.get("against"):
        parts.append("the dedup index of an earlier run given in dedup.against changed")
    return "; ".join(parts) or "the order of the units changed"


def _check_global_inputs(layout: RunLayout, global_stages, inputs: dict) -> None:
    """Refuse to reuse global-phase results (dedup/<stage>/_SUCCESS, drops, cluster sizes, and
    the apply phase's units/<unit>.json made from them) over a different set of units."""
    dedup = layout.root / "dedup"
    derived = [layout.dedup_dir(st.name) / "_SUCCESS" for st in global_stages]
    derived = [p for p in derived if p.exists()] + sorted(layout.units_dir.glob("*.json"))[:1]
    if not derived:
        return  # nothing computed from the old unit list yet: the global phases start afresh
    path = dedup / GLOBAL_INPUTS
    old = json.loads(path.read_text()) if path.exists() else None
    if old is not None and old.get("key") == inputs["key"]:
        return
    what = _describe_change(old, inputs) if old is not None else "this run's global phases do not record their inputs"
    raise RunStateError(
        f"input changed since the deduplication of {layout.root} was computed: {what}; its duplicate "
        "decisions hold only for the inputs they were made over. Pass --overwrite to start over, "
        "or choose another output directory"
    )


def _run_global_phases(eng, ctx: RunContext, units, global_stages, inputs: dict, against: list[dict]) -> dict:
    """Each global stage runs its rounds through the engine (GlobalStage.run_global), then its
    drops are routed by unit into dedup/<stage>/drops/ and a _SUCCESS marker (naming the inputs
    key) makes the finished stage skip on rerun over the same inputs; an unfinished stage
    resumes from its last finished round. Then dropped documents are resolved to their kept
    ones and cluster sizes counted, also in rounds (dedup/resolved/). The driver holds the
    rounds' statistics, never a document. Returns what the manifest records of the rounds."""
    from babelmill.pipeline.core.global_stage import GlobalRounds, resolve
    from babelmill.pipeline.core.rounds import RoundResult, read_success

    layout = ctx.layout
    atomic_write_json(layout.root / "dedup" / GLOBAL_INPUTS, inputs)
    shards = {i: layout.staged(u.unit_id) for i, u in enumerate(units)}
    # earlier runs' index shards enter the same shuffles under negative unit numbers
    shards.update({unit: path for a in against for unit, path in a["shards"]})
    docs = sum(json.loads(layout.staged_stats(u.unit_id).read_text())["kept"] for u in units)
    against_dirs = [a["dir"] for a in against]
    previous: list[str] = []
    drops: list[RoundResult] = []
    report: dict = {}
    for st in global_stages:
        d = layout.dedup_dir(st.name)
        success = d / "_SUCCESS"  # over these inputs: _check_global_inputs refused any other
        drops_dir = d / "drops"
        if success.exists() and read_success(drops_dir) is None:
            success.unlink()  # a run directory from before rounds (drops.parquet): recomputed
        if not success.exists():
            t0 = time.time()
            st.ensure_setup(ctx)
            rounds = GlobalRounds(eng, st, d, shards, docs, previous, against_dirs, log)
            result = rounds.drops(st.run_global(rounds))
            atomic_write_json(success, {"drops": result.rows, "seconds": round(time.time() - t0, 3),
                                        "inputs_key": inputs["key"], "rounds": rounds.history})
            log.info("%s: %d duplicates found in %.1f s (%d rounds)", st.name, result.rows, time.time() - t0,
                     len(rounds.history))
        done = read_success(drops_dir)
        drops.append(RoundResult(drops_dir, done["num_partitions"], done["stats"]))
        report[st.name] = json.loads(success.read_text())
        previous.append(str(drops_dir))
    resolved_success = layout.root / "dedup" / "resolved" / "_SUCCESS"
    if resolved_success.exists() and (layout.root / "dedup" / "_resolve.json").exists():
        history = json.loads((layout.root / "dedup" / "_resolve.json").read_text())
    else:
        _, history = resolve(eng, layout.root / "dedup", drops, log)
        atomic_write_json(layout.root / "dedup" / "_resolve.json", history)
    report["resolve"] = {"rounds": history}
    return report


def _preflight(stages, ctx: RunContext) -> None:
    """Driver-side checks that need a stage's resources (e.g. that the LID model can produce
    every registry language), before any worker starts; with the run's context, as on workers."""
    for st in stages:
        st.bind(ctx)
        check = getattr(st, "preflight", None)
        if check is not None:
            check()


def run_pipeline(cfg: PipelineConfig, engine: str | None = None, overwrite: bool = False, quiet: bool = False) -> dict:
    """Run `cfg`; returns the manifest. `quiet`: no progress bars (messages go to this module's
    logger whatever it is: its level decides)."""
    started = time.time()
    engine_name = engine or cfg.engine.name
    fingerprint = cfg.fingerprint()
    ctx = RunContext.from_config(cfg)  # the registry and layout of the whole run, chosen once
    layout = ctx.layout
    stages = build_stages(cfg)  # fail fast on the driver, before any worker starts
    global_stages = [st for st in stages if is_global(st)]
    first_global = next((i for i, st in enumerate(stages) if is_global(st)), len(stages))
    late = [st.name for st in stages[first_global:] if not is_global(st)]
    if late:
        names = ", ".join(st.name for st in global_stages)
        raise ConfigError(f"global stages ({names}) must come after all other stages; move {', '.join(late)} before them")
    _preflight(stages, ctx)
    eng = get_engine(engine_name)(cfg.engine)  # engine settings are checked here too (Ray dashboard)
    if overwrite:
        _refuse_foreign_dir(layout)
    check_output_dir(layout.root)
    with run_dir_lock(layout.root):
        return _run_locked(cfg, ctx, stages, global_stages, eng, engine_name, fingerprint, overwrite, quiet, started)


def _run_locked(cfg, ctx, stages, global_stages, eng, engine_name, fingerprint, overwrite, quiet, started) -> dict:
    layout = ctx.layout
    # plan first: a bad input fails before --overwrite deletes the previous run
    plan = plan_inputs(cfg.input.paths, read_options(cfg), exclude=[layout.root])
    units = plan.units
    ids = [u.unit_id for u in units]
    if len(set(ids)) != len(ids):
        raise ConfigError("two inputs map to the same work unit id; rename or move one of them")
    # earlier runs' indexes are checked before anything is written
    against: list[dict] = []
    if global_stages:
        if cfg.dedup.index:
            dedup_index.check_supported(global_stages, "dedup.index")
        against = load_against(cfg.dedup.against, global_stages, layout.root)
    elif cfg.dedup.against or cfg.dedup.index:
        key = "dedup.against" if cfg.dedup.against else "dedup.index"
        raise ConfigError(f"{key} is set but the run has no global (dedup) stage")
    _prepare_run_dir(cfg, layout, fingerprint, overwrite)

    fps: dict[str, str] = {}

    def fp(u) -> str:
        if u.unit_id not in fps:
            fps[u.unit_id] = u.fingerprint()
        return fps[u.unit_id]

    inputs = global_report = None
    if global_stages:
        inputs = _global_inputs(units, {u.unit_id: fp(u) for u in units}, fingerprint, against)
        _check_global_inputs(layout, global_stages, inputs)

    def map_marker(u):
        return layout.staged_stats(u.unit_id) if global_stages else layout.unit_stats(u.unit_id)

    done, pending = [], []
    for u in units:
        marker = map_marker(u)
        if marker.exists():
            stats = json.loads(marker.read_text())
            if stats.get("fingerprint") != fp(u):
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
    log.info("%s: %d work unit(s) on engine %s into %s; language registry %s (%d languages)", cfg.name,
             len(units), engine_name, layout.root, ctx.registry_path, len(ctx.languages))
    if done:
        log.info("resuming: %d of %d work units already done in %s, skipping them", len(done), len(units), layout.root)

    spec = RunSpec(config=cfg.model_dump(mode="json"), run_dir=str(layout.root), config_fingerprint=fingerprint,
                   context=ctx.to_dict())
    desc = f"{cfg.name} [{engine_name}]"
    # wall-clock seconds of each phase in this invocation (a phase a resumed run skips: about 0)
    phase_seconds = {}
    t0 = time.perf_counter()
    if pending:
        with _progress(quiet, marker_dir, len(units), len(done), desc):
            eng.run_units(spec, pending)
    phase_seconds["map"] = time.perf_counter() - t0
    if global_stages:
        t0 = time.perf_counter()
        global_report = _run_global_phases(eng, ctx, units, global_stages, inputs, against)
        phase_seconds["global"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        index = {u.unit_id: i for i, u in enumerate(units)}
        apply_spec = RunSpec(config=spec.config, run_dir=spec.run_dir, config_fingerprint=fingerprint,
                             phase="apply", unit_index=index, context=spec.context)
        todo = [u for u in units if not layout.unit_stats(u.unit_id).exists()]
        if todo:
            with _progress(quiet, layout.units_dir, len(units), len(units) - len(todo), f"{desc} apply dedup"):
                eng.run_units(apply_spec, todo)
        if cfg.dedup.index:
            dedup_index.finish(layout.root, units, global_stages)
        phase_seconds["apply"] = time.perf_counter() - t0

    unit_stats = [json.loads(layout.unit_stats(u.unit_id).read_text()) for u in units]
    skipped = [{"path": str(s.path), "reason": s.reason, "detail": s.detail} for s in plan.skipped]
    manifest = build_manifest(
        cfg=cfg,
        fingerprint=fingerprint,
        engine=engine_name,
        units=units,
        unit_stats=unit_stats,
        resumed=len(done),
        started=started,
        stage_descriptions=[s.describe() for s in stages],
        skipped=skipped[:MAX_SKIPPED_LISTED],
        skipped_total=len(skipped),
        global_phases=global_report,
        context=ctx,
        phase_seconds=phase_seconds,
    )
    if not manifest["counts"]["balanced"]:
        raise RuntimeError(f"accounting mismatch in {layout.root}: {manifest['counts']}")
    _warn_about(manifest)
    atomic_write_json(layout.manifest, manifest)
    c = manifest["counts"]
    log.info("%s: %d of %d documents kept; manifest %s", cfg.name, c["kept"], c["docs_in"], layout.manifest)
    if cfg.balance is not None:
        from babelmill.pipeline.balance.run import run_balance

        # The balanced corpus is derived from the curated one and the balance config alone, so an
        # edited `balance:` section rebuilds it (with a warning) instead of refusing the run. It
        # reads the run's registry from the manifest just written.
        run_balance(layout.root, cfg.balance, engine_name, cfg.engine, overwrite=True, quiet=quiet)
    return manifest


def _warn_about(manifest: dict) -> None:
    """Warnings for what the counts alone would not show."""
    c = manifest["counts"]
    dup = c["duplicate_ids"]
    if dup["within_units"] or dup["kept_same_id"]:
        log.warning(
            "duplicate document ids: %d document(s) reuse an id seen earlier in the same work unit; "
            "%d duplicate(s) were dropped in favour of a document with the same id (kept_id says nothing "
            "for them). Ids should be unique; set input.id_field: null to derive ids from file and line",
            dup["within_units"], dup["kept_same_id"])
    if c["records_lost"]:
        log.warning("at least %d more record(s) were in unreadable parts of the input (not in docs_in; "
                    "see records_lost in rejects/)", c["records_lost"])
    if manifest["inputs_skipped"]["count"]:
        log.warning("%d input(s) skipped (listed in the manifest under inputs_skipped)",
                    manifest["inputs_skipped"]["count"])
