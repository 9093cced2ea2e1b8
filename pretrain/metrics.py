"""Training metrics: JSONL in the save dir (the record of a run), TensorBoard, a tqdm bar.

Only global rank 0 writes. On resume the JSONL is cut back to the resumed iteration, so after a
crash and resume every iteration appears exactly once (the records of steps that were lost with
the crash are dropped and re-logged by the resumed run). A run started over with `--restart`
(no checkpoint loadable) keeps the old file as metrics.jsonl.N (`rotate`) instead.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def read_metrics(path: str | Path) -> list[dict]:
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a crash
    return out


def truncate_after(path: Path, iteration: int) -> None:
    """Drop records of steps after `iteration` (atomically rewrites the file)."""
    if not path.is_file():
        return
    keep = [r for r in read_metrics(path) if r.get("iteration", 0) <= iteration]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in keep:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def rotate(path: Path) -> Path | None:
    """Move `path` (file or dir) aside to `path.N`, N the first free number; the new name."""
    if not path.exists():
        return None
    n = 1
    while path.with_name(f"{path.name}.{n}").exists():
        n += 1
    dst = path.with_name(f"{path.name}.{n}")
    os.replace(path, dst)
    return dst


class MetricsLogger:
    def __init__(self, save_dir: str | Path, enabled: bool, resume_iteration: int = 0,
                 total_iters: int = 0, progress: bool | None = None, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(save_dir) / METRICS_FILE
        self._f = None
        self._tb = None
        self._bar = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        truncate_after(self.path, resume_iteration)
        self._f = open(self.path, "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(Path(save_dir) / "tensorboard"),
                                         purge_step=resume_iteration + 1)
            except Exception:  # noqa: BLE001 - tensorboard is optional
                self._tb = None
        if progress is None:
            progress = sys.stderr.isatty()
        if progress:
            from tqdm import tqdm

            self._bar = tqdm(total=total_iters, initial=resume_iteration, desc="train", unit="it",
                             dynamic_ncols=True)

    def log(self, record: dict, light: bool = False) -> None:
        """Append a record. `light` (per-step loss between log intervals): JSONL only, no flush."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._f.write(json.dumps(clean) + "\n")
        if light:
            return
        self._f.flush()
        it = record.get("iteration", 0)
        if self._tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "iteration":
                    self._tb.add_scalar(k.replace("/", "_") if "/" not in k else k, v, it)
                elif isinstance(v, dict):
                    for kk, vv in v.items():
                        if isinstance(vv, (int, float)):
                            self._tb.add_scalar(f"{k}/{kk}", vv, it)

    def step(self, iteration: int, loss: float | None = None) -> None:
        if self._bar is not None:
            self._bar.update(iteration - self._bar.n)
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
        if self._f is not None:
            self._f.close()
            self._f = None
