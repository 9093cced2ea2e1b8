"""Timing helper shared by the benchmarks. It lives here, not in the package, because only
benchmarks time things this way: library code has no use for a best-of-N stopwatch."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of `repeat` timed calls of `fn` (seconds): the least disturbed by other work."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
