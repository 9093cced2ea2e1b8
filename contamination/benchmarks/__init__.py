"""Multiple-choice benchmark loaders (see loaders.py)."""

from babelmill.contamination.benchmarks.loaders import Benchmark, load_benchmark, load_benchmarks

__all__ = ["Benchmark", "load_benchmark", "load_benchmarks"]
