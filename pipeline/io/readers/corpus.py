"""Read a corpus outside a pipeline run (tokenizer training, pretraining preprocess, the n-gram
contamination scan) through the same readers, with the caller choosing what a bad record does.

    quarantine = Quarantine()
    for unit, docs in read_corpus(plan_units(inputs, opts), opts, on_bad="quarantine",
                                  quarantine=quarantine, quarantine_to=out / "quarantine.parquet"):
        ...
    quarantine.summary()  # {"records": 1, "by_reason": {"bad_json": 1}, "files": {...}}

Why one function: each tool used to parse JSON its own way, one raising on a bad line, one
skipping it without a word. Here there are two choices and neither is silent:

- `strict`: the readers' strict mode; the first bad record raises the pipeline's `InputError`,
  naming the file and line (or `@offset` / row) and the reject reason;
- `quarantine`: bad records are left out of the documents and counted per file and reason in
  the caller's `Quarantine` (required, so the counts cannot be dropped by accident); with
  `quarantine_to` the reject rows themselves (REJECT_SCHEMA: reason, detail, a snippet of the
  record) are written to one Parquet file, atomically, as the pipeline writes its rejects.

A bad record is any read-time reject of READ_REASONS, so "bad" means the same as in a
pipeline run: broken JSON or UTF-8, a record that is not an object, a missing, empty or
oversized text, a corrupt compressed or Parquet file.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pyarrow as pa

from babelmill.pipeline.io.readers.options import ReadOptions, WorkUnit

OnBad = Literal["strict", "quarantine"]
ON_BAD = ("strict", "quarantine")


def check_on_bad(on_bad: str) -> str:
    if on_bad not in ON_BAD:
        raise ValueError(f"unknown on_bad {on_bad!r} (known: {', '.join(ON_BAD)})")
    return on_bad


@dataclass
class Quarantine:
    """What a quarantine-mode read set aside: reject rows per input file (the unit's path) and
    reason. `records_lost` counts records a corrupt unit held beyond its one reject row (a
    broken gzip member, an unreadable row group), where the reader could tell how many."""

    files: dict[str, Counter] = field(default_factory=dict)
    lost: Counter = field(default_factory=Counter)

    def add(self, path: str, rejects: pa.Table) -> None:
        if not rejects.num_rows:
            return
        self.files.setdefault(path, Counter()).update(rejects.column("reason").to_pylist())
        lost = sum(n for n in rejects.column("records_lost").to_pylist() if n)
        if lost:
            self.lost[path] += lost

    def merge(self, summary: dict) -> None:
        """Add the counts of another read's `summary()` (e.g. one per worker process)."""
        for path, f in (summary.get("files") or {}).items():
            if f.get("by_reason"):
                self.files.setdefault(path, Counter()).update(f["by_reason"])
            if f.get("records_lost"):
                self.lost[path] += f["records_lost"]

    @property
    def records(self) -> int:
        return sum(sum(c.values()) for c in self.files.values())

    @property
    def by_reason(self) -> Counter:
        total: Counter = Counter()
        for c in self.files.values():
            total.update(c)
        return total

    def summary(self, files: Iterable[str] = ()) -> dict:
        """JSON-ready counts. `files` are listed even when nothing of them was quarantined, so a
        report shows a zero for every file read rather than leaving the reader to guess."""
        paths = list(dict.fromkeys([*files, *self.files]))
        out = {
            "records": self.records,
            "by_reason": dict(sorted(self.by_reason.items())),
            "files": {
                p: {
                    "records": sum(self.files.get(p, Counter()).values()),
                    "by_reason": dict(sorted(self.files.get(p, Counter()).items())),
                    **({"records_lost": self.lost[p]} if self.lost.get(p) else {}),
                }
                for p in paths
            },
        }
        if self.lost:
            out["records_lost"] = sum(self.lost.values())
        return out


def read_corpus(
    units: Iterable[WorkUnit],
    opts: ReadOptions,
    *,
    on_bad: OnBad = "strict",
    quarantine: Quarantine | None = None,
    quarantine_to: str | Path | None = None,
) -> Iterator[tuple[WorkUnit, pa.RecordBatch]]:
    """Yield (unit, documents) for every non-empty document batch of `units`, in order.

    `opts.strict` is ignored: `on_bad` decides (planning, which may have used `opts`, is the
    caller's). `quarantine` is required with on_bad="quarantine"; `quarantine_to` (a Parquet
    path) is written once the read is complete, only if some record was quarantined: a read
    that fails or is stopped early leaves no partial file."""
    from babelmill.pipeline.io.readers import read_unit

    check_on_bad(on_bad)
    if on_bad == "quarantine" and quarantine is None:
        raise ValueError("on_bad='quarantine' needs a Quarantine to count the bad records into")
    opts = dataclasses.replace(opts, strict=on_bad == "strict")
    writer = None
    try:
        for unit in units:
            for docs, rejects in read_unit(unit, opts):
                if rejects.num_rows:  # strict mode never gets here: the reader raised
                    quarantine.add(unit.path, rejects)
                    if quarantine_to is not None:
                        if writer is None:
                            from babelmill.pipeline.core.schema import REJECT_SCHEMA
                            from babelmill.pipeline.io.writers import ShardWriter

                            writer = ShardWriter(quarantine_to, REJECT_SCHEMA)
                        writer.write(rejects)
                if docs.num_rows:
                    yield unit, docs
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    if writer is not None:
        writer.close()
