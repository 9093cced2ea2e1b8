"""Ray Data engine (the default): work units are rows of a Ray Dataset, mapped by an actor
pool of UnitWorkers (stages set up once per actor, e.g. the LID model loaded once).

Without an address (config `engine.ray.address` or $RAY_ADDRESS) a local Ray is started with
every process bound to loopback and its dashboard off (`engine.ray.dashboard: true` starts it, on
`engine.ray.dashboard_host`, loopback by default); with one, the job runs on that cluster (as
under `ray job submit`, which sets $RAY_ADDRESS for the job's driver). On a cluster, the run
directory must be on a filesystem every node sees (NFS, Lustre, ...).

A local Ray started here is shut down when the process exits and on SIGTERM/SIGINT, so no
Ray process outlives the run (a cluster the user connected to is never shut down). Errors a
worker raises for bad input or config (InputError, ConfigError, ...) are re-raised as
themselves, not inside Ray's wrappers, so they reach the CLI as one line.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import pickle
import signal
import threading
from dataclasses import asdict

import pyarrow as pa

from babelmill.pipeline.config import ConfigError
from babelmill.pipeline.engines.errors import DOMAIN_ERRORS, unwrap_domain_errors
from babelmill.pipeline.io.readers import WorkUnit
from babelmill.pipeline.runner.worker import RunSpec, UnitWorker

log = logging.getLogger("babelmill.ray")

#: modules Ray's dashboard needs (ray/dashboard/optional_deps.py, Ray 2.60; without one of them Ray
#: fails with "Cannot include dashboard with missing packages"): `pip install ray[default]` brings
#: them, `ray[data]` alone does not (requirements.txt pins ray[data,default])
DASHBOARD_MODULES = ("aiohttp", "aiohttp_cors", "grpc", "opencensus", "opentelemetry.exporter.prometheus",
                     "opentelemetry.proto", "prometheus_client")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_started_here = False  # this process started (and so owns) the local Ray
_handlers_installed = False


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package of a dotted name is missing
        return False


def missing_dashboard_packages() -> list[str]:
    return [m for m in DASHBOARD_MODULES if not _importable(m)]


def check_dashboard(cfg) -> None:
    """engine.ray.dashboard: true needs packages that `ray[data]` does not install; say so
    before Ray starts (Ray itself fails with "Cannot include dashboard with missing packages")."""
    if cfg is None or not cfg.dashboard or cfg.address or os.environ.get("RAY_ADDRESS"):
        return
    missing = missing_dashboard_packages()
    if missing:
        raise ConfigError(
            f"engine.ray.dashboard: true needs Ray's dashboard packages, missing here: {', '.join(missing)}; "
            "install them with `pip install 'ray[default]'` (the same version as ray), or set "
            "engine.ray.dashboard: false"
        )


def _shutdown_local_ray() -> None:
    global _started_here
    if not _started_here:
        return
    _started_here = False
    import ray

    try:
        ray.shutdown()
    except Exception:  # never mask the exit or signal that brought us here
        log.exception("ray.shutdown() failed")


def _install_shutdown_handlers() -> None:
    """atexit + SIGTERM/SIGINT: shut the local Ray down, then let the signal do what it did
    before (Ray's handler exits, Python's raises KeyboardInterrupt, the default kills)."""
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(_shutdown_local_ray)
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers can only be set from the main thread
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            _shutdown_local_ray()
            signal.signal(signum, previous)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signum)  # die of the signal, as without this handler

        signal.signal(sig, handler)


@contextlib.contextmanager
def _loopback_only():
    """Ray resolves a node IP of 127.0.0.1 to the host's external address on Linux (so that
    other nodes could join), which binds GCS, raylet and agents to the external interface.
    A local Ray has no other nodes: for ray.init only, make Ray treat this as a single-machine
    install, where it keeps loopback (its own setting for macOS and Windows)."""
    import ray._private.ray_constants as ray_constants

    old = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old


def ensure_ray(cfg=None) -> None:
    """Connect to (or start) Ray once per process; an existing session is reused."""
    global _started_here
    import ray

    if ray.is_initialized():
        _configure_data_context()
        return
    address = (cfg.address if cfg else None) or os.environ.get("RAY_ADDRESS")
    kwargs = {"log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        check_dashboard(cfg)
        with _loopback_only():
            ctx = ray.init(
                num_cpus=cfg.num_cpus if cfg else None,
                include_dashboard=bool(cfg.dashboard) if cfg else False,
                dashboard_host=cfg.dashboard_host if cfg else "127.0.0.1",
                _node_ip_address="127.0.0.1",
                **kwargs,
            )
        _started_here = True
        _install_shutdown_handlers()
        if cfg is not None and cfg.dashboard:
            _announce_dashboard(cfg, ctx)
    _configure_data_context()


def _announce_dashboard(cfg, ctx) -> None:
    """Say where the dashboard listens (Ray takes the next free port when 8265 is taken)."""
    url = getattr(ctx, "dashboard_url", None)
    if not url:
        log.warning("engine.ray.dashboard: true, but Ray started no dashboard (see Ray's dashboard.log)")
        return
    where = f"loopback only; from another machine: ssh -L 8265:{url} USER@THIS_HOST, then http://localhost:8265"
    if cfg.dashboard_host not in LOOPBACK_HOSTS:
        where = f"bound to {cfg.dashboard_host}: reachable from the network"
    log.warning("Ray dashboard at http://%s while this run lasts (%s)%s", url, where, _token_hint())


def _token_hint() -> str:
    try:  # Ray 2.60 turns token authentication on for a new local Ray unless RAY_AUTH_MODE=disabled
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        enabled = is_token_auth_enabled()
    except Exception:  # a private module: a hint, never a failure
        return ""
    return "; it asks for the token `ray get-auth-token` prints" if enabled else ""


def _configure_data_context() -> None:
    """Ray Data settings of every dataset we build (the context travels with the dataset)."""
    import ray
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False


class _RayUnitWorker:
    """Ray Data callable class: one UnitWorker per actor; a batch is a handful of units."""

    def __init__(self, spec: dict):
        self.worker = UnitWorker(spec)
        self.worker.setup()

    def __call__(self, batch: pa.Table) -> pa.Table:
        # Ray Data wraps a UDF's exception in a UserCodeException whose cause does not survive
        # the trip to the driver (and logs a traceback on the way), so bad input or config
        # travels back as data, the driver raising it as itself. Other exceptions are bugs:
        # Ray's full report is what one wants for them.
        done, errors = [], []
        for u in batch.column("unit").to_pylist():
            try:
                done.append(self.worker.process(WorkUnit(**u))["unit_id"])
                errors.append(None)
            except DOMAIN_ERRORS as e:
                done.append(u["unit_id"])
                errors.append(pickle.dumps(e))
                break
        return pa.table({"unit_id": pa.array(done, pa.string()), "error": pa.array(errors, pa.binary())})


class RayEngine:
    name = "ray"

    def __init__(self, engine_cfg=None):
        self.cfg = engine_cfg.ray if engine_cfg is not None else None
        check_dashboard(self.cfg)  # before the run touches its directory

    def run_units(self, spec: RunSpec, units: list[WorkUnit]) -> None:
        import ray

        ensure_ray(self.cfg)
        if not units:
            return
        cpus = int(ray.available_resources().get("CPU", 1)) or 1
        concurrency = (self.cfg.concurrency if self.cfg else None) or max(1, min(cpus, len(units)))
        ds = ray.data.from_items([{"unit": asdict(u)} for u in units], override_num_blocks=len(units))
        out = ds.map_batches(
            _RayUnitWorker,
            fn_constructor_kwargs={"spec": spec.to_dict()},
            batch_size=1,
            batch_format="pyarrow",
            concurrency=concurrency,
            num_cpus=1,
        )
        finished = set()
        with unwrap_domain_errors():
            for r in out.iter_rows():
                if r["error"] is not None:  # from _RayUnitWorker: our own exception, pickled by us
                    raise pickle.loads(r["error"])  # noqa: S301
                finished.add(r["unit_id"])
        missing = {u.unit_id for u in units} - finished
        if missing:
            raise RuntimeError(f"Ray finished without processing units: {sorted(missing)[:5]}")

    def map_tasks(self, fn, tasks: list[dict]) -> None:
        """Run a module-level function over plain-data tasks as Ray tasks (one CPU each);
        tasks report through the files they write."""
        import ray

        ensure_ray(self.cfg)
        if tasks:
            remote = ray.remote(num_cpus=1)(fn)
            with unwrap_domain_errors():
                ray.get([remote.remote(t) for t in tasks])

    def shuffle_reduce(self, spec, tasks: list[dict]) -> None:
        """One round (pipeline/core/rounds.py) as Ray tasks, shuffled through the run's
        filesystem as MapReduce does: a round's partitions are dealt to R reduce tasks
        (partition p to task p % R, R = 4 per CPU of the cluster, at most the partitions); each
        map task writes, per reduce task, one file of its rows with a row group per partition
        under <round dir>/_map/; each reduce task reads its files, one partition at a time (a
        partition is the memory unit, a task the scheduling unit). The driver holds which
        files each map task wrote, no rows.

        (Measured and dropped: Ray Data's groupby, whose hash shuffle starts aggregator actors
        for every shuffle, ~8 s a round, and whose sort strategy sorts every row and ignores the
        partition count; one object per partition returned by the map tasks, which Ray keeps in
        the driver's memory when under 100 KB (driver at 1.2 GB at 1M documents); one file per
        map task with a row group per partition, whose footers every reduce task re-read (5M
        documents: 1,681 partitions x 58 files, the attach round 18x slower than at 1M).)"""
        import shutil
        from pathlib import Path

        import ray

        ensure_ray(self.cfg)
        if not tasks:
            return
        n = spec.num_partitions
        cpus = int(ray.cluster_resources().get("CPU", 1)) or 1
        reducers = max(1, min(n, max(8, 4 * cpus), 1024))
        map_dir = Path(spec.out_dir) / "_map"
        map_dir.mkdir(parents=True, exist_ok=True)
        spec_ref = ray.put(spec)
        write = ray.remote(num_cpus=1)(_map_write)
        reduce = ray.remote(num_cpus=1)(_reduce_read)
        with unwrap_domain_errors():
            written = ray.get([write.remote(spec_ref, t, str(map_dir), k, reducers) for k, t in enumerate(tasks)])
            files_of: dict[int, list[str]] = {}
            for files in written:
                for r, path in files:
                    files_of.setdefault(r, []).append(path)
            ray.get([reduce.remote(spec_ref, files) for _, files in sorted(files_of.items())])
        shutil.rmtree(map_dir)


def _map_write(spec, task: dict, map_dir: str, k: int, reducers: int) -> list[tuple[int, str]]:
    """A round's map task on a Ray worker: its rows, one file per reduce task that gets some,
    a row group per partition."""
    import pyarrow.parquet as pq

    from babelmill.pipeline.engines.shuffle import split_by_part

    by_reducer: dict[int, list] = {}
    for part, piece in split_by_part(spec.map(task)):
        by_reducer.setdefault(part % reducers, []).append(piece)
    out = []
    for r, pieces in sorted(by_reducer.items()):
        path = f"{map_dir}/r{r:05d}-t{k:06d}.parquet"
        with pq.ParquetWriter(path, pieces[0].schema, compression="lz4", use_dictionary=False) as w:
            for piece in pieces:
                w.write_table(piece, row_group_size=max(1, piece.num_rows))
        out.append((r, path))
    return out


def _reduce_read(spec, files: list[str]) -> int:
    """A round's reduce task: every partition its files hold, one at a time."""
    import pyarrow.parquet as pq

    from babelmill.pipeline.core.rounds import start_task_memory

    handles = [pq.ParquetFile(p) for p in files]
    groups: dict[int, list[tuple[int, int]]] = {}
    for h_i, f in enumerate(handles):
        col = f.schema_arrow.get_field_index("part")
        for g in range(f.num_row_groups):
            groups.setdefault(f.metadata.row_group(g).column(col).statistics.min, []).append((h_i, g))
    for part, where in sorted(groups.items()):
        base = start_task_memory()
        tables = [handles[h].read_row_group(g) for h, g in where]
        spec.reduce(part, pa.concat_tables(tables, promote_options="permissive"), base)
    return len(groups)
