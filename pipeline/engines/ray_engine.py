"""Ray Data engine (the default): work units are rows of a Ray Dataset, mapped by an actor
pool of UnitWorkers (stages set up once per actor, e.g. the LID model loaded once).

Without an address (config `engine.ray.address` or $RAY_ADDRESS) a local Ray is started with
its dashboard off and, if enabled, bound to loopback; with one, the job runs on that cluster.
On a cluster, the run directory must be on a filesystem every node sees (NFS, Lustre, ...).
"""

from __future__ import annotations

import os
from dataclasses import asdict

import pyarrow as pa

from babelmill.pipeline.io.readers import WorkUnit
from babelmill.pipeline.runner.worker import RunSpec, UnitWorker


def ensure_ray(cfg=None) -> None:
    """Connect to (or start) Ray once per process; an existing session is reused."""
    import ray

    if ray.is_initialized():
        return
    address = (cfg.address if cfg else None) or os.environ.get("RAY_ADDRESS")
    kwargs = {"log_to_driver": False, "configure_logging": False}
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(
            num_cpus=cfg.num_cpus if cfg else None,
            include_dashboard=bool(cfg.dashboard) if cfg else False,
            dashboard_host=cfg.dashboard_host if cfg else "127.0.0.1",
            _node_ip_address="127.0.0.1",
            **kwargs,
        )
    ray.data.DataContext.get_current().enable_progress_bars = False


class _RayUnitWorker:
    """Ray Data callable class: one UnitWorker per actor; a batch is a handful of units."""

    def __init__(self, spec: dict):
        self.worker = UnitWorker(spec)
        self.worker.setup()

    def __call__(self, batch: pa.Table) -> pa.Table:
        done = [self.worker.process(WorkUnit(**u))["unit_id"] for u in batch.column("unit").to_pylist()]
        return pa.table({"unit_id": done})


class RayEngine:
    name = "ray"

    def __init__(self, engine_cfg=None):
        self.cfg = engine_cfg.ray if engine_cfg is not None else None

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
        finished = {r["unit_id"] for r in out.iter_rows()}
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
            ray.get([remote.remote(t) for t in tasks])

    def shuffle_reduce(self, stage, tasks: list[dict], out_dir: str) -> None:
        """Key rows from every staged shard, grouped by partition with Ray Data's groupby (a
        distributed shuffle), reduced per partition on the workers."""
        import json

        import ray

        from babelmill.pipeline.engines.shuffle import map_task, reduce_task

        ensure_ray(self.cfg)
        if not tasks:
            return

        def mapper(batch: pa.Table) -> pa.Table:
            # an empty table (with its schema) when a shard has no keys left: Ray needs a table
            return pa.concat_tables([map_task(stage, json.loads(t)) for t in batch.column("task").to_pylist()])

        def reducer(group: pa.Table) -> pa.Table:
            part = int(group.column("part")[0].as_py())
            n = reduce_task(stage, out_dir, part, group)
            return pa.table({"part": [part], "rows": [n]})

        ds = ray.data.from_items([{"task": json.dumps(t)} for t in tasks], override_num_blocks=len(tasks))
        keys = ds.map_batches(mapper, batch_size=1, batch_format="pyarrow")
        done = keys.groupby("part").map_groups(reducer, batch_format="pyarrow")
        done.materialize()
