"""In-process engine: tests, small jobs, debugging (a breakpoint in a stage just works)."""

from __future__ import annotations

import pyarrow as pa

from babelmill.pipeline.io.readers import WorkUnit
from babelmill.pipeline.runner.worker import RunSpec, UnitWorker


class LocalEngine:
    name = "local"

    def __init__(self, engine_cfg=None):
        self.engine_cfg = engine_cfg

    def run_units(self, spec: RunSpec, units: list[WorkUnit]) -> None:
        worker = UnitWorker(spec)
        for unit in units:
            worker.process(unit)

    def map_tasks(self, fn, tasks: list[dict]) -> None:
        """Run a module-level function over plain-data tasks (e.g. per-unit balancing work);
        tasks report through the files they write, as on every engine."""
        for t in tasks:
            fn(t)

    def shuffle_reduce(self, spec, tasks: list[dict]) -> None:
        """One round (pipeline/core/rounds.py) in this process."""
        from babelmill.pipeline.engines.shuffle import split_by_part

        tables = [t for t in (spec.map(task) for task in tasks) if t.num_rows]
        if not tables:
            return
        for part, table in split_by_part(pa.concat_tables(tables)):
            spec.reduce(part, table)
