"""In-process engine: tests, small jobs, debugging (a breakpoint in a stage just works)."""

from __future__ import annotations

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
