"""Timing helpers shared by the benchmarks (one implementation, in babelmill.timing)."""

from babelmill.timing import best_of

__all__ = ["best_of"]
