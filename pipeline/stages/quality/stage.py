"""The `quality` stage: per-language heuristic filters (Gopher quality + repetition, C4 lines,
FineWeb) over whole batches.

Per batch: the documents' languages resolve to thresholds and language profiles
(`rules.QualityRules`), `stats.compute_stats` measures the statistics the active filters need,
and each document is checked against its language's bounds in the fixed filter order
(`rules.FILTERS`); the first failure is the drop reason. With `annotate: true` the measured
statistics are kept as float32 columns `q_<stat>`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import Stage, StageError, StageParams, register_stage, with_drops
from babelmill.pipeline.stages.quality.rules import FILTER_NAMES, FILTERS, REASONS, QualityRules
from babelmill.pipeline.stages.quality.stats import _np, compute_stats

#: statistics shown as integers in drop details
_INT_STATS = {"word_count", "stop_words", "lorem_ipsum"}


class QualityParams(StageParams):
    registry: str | None = Field(None, description="language registry YAML (default: the run's)")
    config: str | None = Field(None, description="thresholds YAML (default configs/quality.yaml; a `babelmill calibrate` output works too)")
    filters: list[str] | None = Field(None, description="run only these filters (with or without the q_ prefix)")
    annotate: bool = Field(False, description="add the measured statistics as float32 columns q_<stat>")


def _fmt(stat: str, v: float) -> str:
    if stat in _INT_STATS:
        return str(int(v))
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"


def _fmt_thr(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


@register_stage
class QualityStage(Stage):
    """Per-language heuristics (Gopher quality + repetition, C4 lines, FineWeb): thresholds from
    configs/quality.yaml and the registry; unspaced scripts are measured in characters."""

    name = "quality"
    requires = ("id", "text", "lang")
    produces: dict[str, pa.DataType] = {}
    reasons = REASONS
    Params = QualityParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        sel = self.params.filters
        if sel is None:
            self.active = FILTERS
        else:
            names = [s.removeprefix("q_") for s in sel]
            names = ["word_count" if s == "char_count" else s for s in names]
            unknown = [s for s in names if s not in FILTER_NAMES]
            if unknown:
                raise StageError(f"stage 'quality': unknown filter(s) {unknown}; known: {list(FILTER_NAMES)}")
            self.active = tuple(f for f in FILTERS if f.name in set(names))
        self.groups = {f.group for f in self.active}
        if self.params.annotate:
            self.produces = {f"q_{f.stat}": pa.float32() for f in self.active}

    def setup(self, ctx: RunContext) -> None:
        self.rules = QualityRules(self.params.config, ctx.registry_for(self.params.registry))
        self._bounds: dict[str | None, np.ndarray] = {}

    def _lang_bounds(self, code: str | None) -> np.ndarray:
        b = self._bounds.get(code)
        if b is None:
            b = np.array([self.rules.bounds(code, f) for f in self.active], dtype=np.float64).reshape(-1, 2)
            self._bounds[code] = b
        return b

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        langs = batch.column("lang")
        enc = pc.dictionary_encode(langs)
        codes: list[str | None] = [*enc.dictionary.to_pylist(), None]
        lang_idx = _np(pc.fill_null(enc.indices, len(codes) - 1), np.int64)
        profiles = [self.rules.resolve(c)[1] for c in codes]
        stats = compute_stats(batch.column("text"), lang_idx, profiles, self.groups)
        bounds = np.stack([self._lang_bounds(c) for c in codes])  # (langs, filters, 2)
        reason = np.full(n, -1, dtype=np.int64)
        is_lo = np.zeros(n, dtype=bool)
        for k in range(len(self.active) - 1, -1, -1):  # last to first: the first failure wins
            f = self.active[k]
            v = stats[f.stat]
            lo, hi = bounds[lang_idx, k, 0], bounds[lang_idx, k, 1]
            with np.errstate(invalid="ignore"):
                low, high = v < lo, v > hi
            fail = low | high
            reason[fail] = k
            is_lo[fail] = low[fail]
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for i in np.flatnonzero(reason >= 0):
            k = int(reason[i])
            f = self.active[k]
            spaced = profiles[lang_idx[i]].spaced
            name, stat = f.name, f.stat
            if name == "word_count" and not spaced:
                name, stat = "char_count", "char_count"
            elif f.group == "ngrams" and not spaced:
                stat = f"{stat}(chars)"
            lo_side = bool(is_lo[i])
            thr = bounds[lang_idx[i], k, 0 if lo_side else 1]
            reasons[i] = f"q_{name}"
            details[i] = f"{stat}={_fmt(f.stat, float(stats[f.stat][i]))} {'<' if lo_side else '>'} {_fmt_thr(thr)}"
        out = batch
        if self.params.annotate:
            for f in self.active:
                out = out.append_column(f"q_{f.stat}", pa.array(stats[f.stat].astype(np.float32), pa.float32()))
        return with_drops(out, pa.array(reasons, pa.string()), pa.array(details, pa.string()))
