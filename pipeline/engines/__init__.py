"""Thin adapters that run the same UnitWorker in-process, on Ray Data or on Apache Beam.

An engine only decides *where* units run. What happens to a unit (read, stages, writes,
accounting) lives in `babelmill.pipeline.runner.worker` and is identical on every engine.
"""

from __future__ import annotations


def get_engine(name: str):
    if name == "local":
        from babelmill.pipeline.engines.local import LocalEngine

        return LocalEngine
    if name == "ray":
        from babelmill.pipeline.engines.ray_engine import RayEngine

        return RayEngine
    if name == "beam":
        from babelmill.pipeline.engines.beam_engine import BeamEngine

        return BeamEngine
    raise ValueError(f"unknown engine {name!r}; choose local, ray or beam")
