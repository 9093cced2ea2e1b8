"""Apply a chain of stages to one batch and split kept rows from rejected ones.

This is the only place where `drop_reason` is turned into rejects, for every engine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from babelmill.pipeline.core.schema import DROP_DETAIL, DROP_REASON, rejects_from_columns
from babelmill.pipeline.core.stage import Stage

UNKNOWN_LANG = "und"


@dataclass
class ChainCounts:
    """Counts for one or more batches: per stage in/out, and (stage, reason, lang) drops."""

    stage_in: Counter = field(default_factory=Counter)
    stage_out: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)  # (stage, reason, lang) -> n
    kept: Counter = field(default_factory=Counter)  # lang -> n

    def add_rejects(self, stage: str, rejects: pa.Table) -> None:
        if rejects.num_rows == 0:
            return
        langs = rejects.column("lang").fill_null(UNKNOWN_LANG)
        reasons = rejects.column("reason")
        grouped = pa.table({"r": reasons, "l": langs}).group_by(["r", "l"]).aggregate([("r", "count")])
        for r, lang, n in zip(*(grouped.column(c).to_pylist() for c in ("r", "l", "r_count")), strict=True):
            self.dropped[(stage, r, lang)] += n

    def add_kept(self, batch: pa.RecordBatch | pa.Table) -> None:
        if batch.num_rows == 0:
            return
        if "lang" in batch.schema.names:
            langs = pc.fill_null(batch.column("lang"), UNKNOWN_LANG)
            vc = pc.value_counts(langs)
            for item in vc.to_pylist():
                self.kept[item["values"]] += item["counts"]
        else:
            self.kept[UNKNOWN_LANG] += batch.num_rows


def to_rejects(batch: pa.RecordBatch, stage: str, keep_text: bool = True) -> pa.Table:
    """Rows of `batch` (all of which are rejected) in REJECT_SCHEMA."""
    n = batch.num_rows
    names = set(batch.schema.names)
    cols = {name: batch.column(src) for name, src in
            (("id", "id"), ("source", "source"), ("offset", "offset"), ("reason", DROP_REASON),
             ("detail", DROP_DETAIL), ("lang", "lang"), ("kept_id", "kept_id"), ("text", "text"),
             ("records_lost", "records_lost"))
            if src in names and (keep_text or name != "text")}
    cols["stage"] = pa.array([stage] * n, pa.string())
    return rejects_from_columns(n, cols)


def apply_chain(
    stages: list[Stage], batch: pa.RecordBatch, counts: ChainCounts, keep_text: bool = True
) -> tuple[pa.RecordBatch, list[pa.Table]]:
    """Run `batch` through `stages`; return the kept rows and the rejects of each stage."""
    rejects: list[pa.Table] = []
    for stage in stages:
        if batch.num_rows == 0:
            break
        counts.stage_in[stage.name] += batch.num_rows
        out = stage(batch)
        if DROP_REASON in out.schema.names:
            dropped = pc.is_valid(out.column(DROP_REASON))
            if pc.any(dropped).as_py():
                rej = to_rejects(out.filter(dropped), stage.name, keep_text)
                counts.add_rejects(stage.name, rej)
                rejects.append(rej)
                out = out.filter(pc.invert(dropped))
            out = out.drop_columns([c for c in (DROP_REASON, DROP_DETAIL) if c in out.schema.names])
        counts.stage_out[stage.name] += out.num_rows
        batch = out
    return batch, rejects
