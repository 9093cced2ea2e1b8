"""Apache Beam engine: work units go through Create -> Reshuffle -> ParDo(UnitWorker).

DirectRunner by default (runs offline); any runner and its options pass through from the
config (`engine.beam.runner`, `engine.beam.options`, e.g. `--flink_master=host:8081`). As on
Ray, a distributed runner needs the run directory on a filesystem its workers share. Bad
input or config raised on a worker is re-raised as itself (see engines/errors.py).
"""

from __future__ import annotations

from dataclasses import asdict

from babelmill.pipeline.engines.errors import unwrap_domain_errors
from babelmill.pipeline.io.readers import WorkUnit
from babelmill.pipeline.runner.worker import RunSpec, UnitWorker


def _do_fn_class():
    import apache_beam as beam

    class UnitDoFn(beam.DoFn):
        def __init__(self, spec: dict):
            self.spec = spec
            self.worker = None

        def setup(self):
            self.worker = UnitWorker(self.spec)
            self.worker.setup()

        def process(self, unit: dict):
            yield self.worker.process(WorkUnit(**unit))["unit_id"]

    return UnitDoFn


class BeamEngine:
    name = "beam"

    def __init__(self, engine_cfg=None):
        self.cfg = engine_cfg.beam if engine_cfg is not None else None

    def pipeline_options(self):
        from apache_beam.options.pipeline_options import PipelineOptions

        runner = self.cfg.runner if self.cfg else "DirectRunner"
        args = [f"--runner={runner}", *(self.cfg.options if self.cfg else [])]
        if runner == "DirectRunner":
            args.append(f"--direct_num_workers={self.cfg.direct_num_workers if self.cfg else 1}")
        return PipelineOptions(args)

    def run_units(self, spec: RunSpec, units: list[WorkUnit]) -> None:
        import apache_beam as beam

        if not units:
            return
        UnitDoFn = _do_fn_class()
        with unwrap_domain_errors(), beam.Pipeline(options=self.pipeline_options()) as p:
            _ = (
                p
                | "units" >> beam.Create([asdict(u) for u in units])
                | "spread" >> beam.Reshuffle()
                | "process" >> beam.ParDo(UnitDoFn(spec.to_dict()))
            )

    def map_tasks(self, fn, tasks: list[dict]) -> None:
        """Run a module-level function over plain-data tasks: Create -> Reshuffle -> Map;
        tasks report through the files they write."""
        import apache_beam as beam

        if not tasks:
            return
        with unwrap_domain_errors(), beam.Pipeline(options=self.pipeline_options()) as p:
            _ = p | "tasks" >> beam.Create(tasks) | "spread" >> beam.Reshuffle() | "run" >> beam.Map(fn)

    def shuffle_reduce(self, spec, tasks: list[dict]) -> None:
        """One round (pipeline/core/rounds.py): rows keyed by partition, grouped with Beam's
        GroupByKey, reduced per partition."""
        import apache_beam as beam
        import pyarrow as pa

        from babelmill.pipeline.engines.shuffle import split_by_part

        if not tasks:
            return

        def keyed(task):
            yield from split_by_part(spec.map(task))

        def reduce(kv):
            part, tables = kv
            return spec.reduce(part, pa.concat_tables(list(tables)))

        with unwrap_domain_errors(), beam.Pipeline(options=self.pipeline_options()) as p:
            _ = (
                p
                | "tasks" >> beam.Create(tasks)
                | "key rows" >> beam.FlatMap(keyed)
                | "shuffle" >> beam.GroupByKey()
                | "reduce" >> beam.Map(reduce)
            )
