"""One progress bar for every engine: it watches unit stats files appear in the run dir.

Workers on Ray or Beam run in other processes (or machines with a shared filesystem), so the
driver cannot count callbacks; counting completion markers works the same everywhere.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from tqdm import tqdm


class UnitProgress:
    def __init__(self, units_dir: Path, total: int, already: int, desc: str, interval: float = 0.5):
        self.units_dir = units_dir
        self.already = already
        self.interval = interval
        self._stop = threading.Event()
        self.bar = tqdm(
            total=total, initial=already, desc=desc, unit="unit", disable=None, file=sys.stderr, dynamic_ncols=True
        )
        self._t = threading.Thread(target=self._poll, daemon=True)

    def _count(self) -> int:
        return sum(1 for _ in self.units_dir.glob("*.json")) if self.units_dir.is_dir() else 0

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._refresh()

    def _refresh(self) -> None:
        n = min(self._count(), self.bar.total)
        if n > self.bar.n:
            self.bar.update(n - self.bar.n)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._refresh()
        self.bar.close()
