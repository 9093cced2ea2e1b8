"""Decontamination: remove (or mark) documents that contain benchmark items, using the same
n-gram index as the contamination audit's overlap scan (babelmill.contamination.ngram):
word n-grams for spaced scripts, character n-grams for unspaced ones, per the registry."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.pipeline.core.stage import Stage, StageParams, register_stage, with_drops


class DecontaminateParams(StageParams):
    benchmarks: list[str] = Field(min_length=1, description="benchmark files or folders (any format `babelmill audit` reads)")
    ngram_config: str | None = Field(None, description="n-gram sizes YAML (default configs/contamination/ngram.yaml)")
    drop: bool = Field(True, description="drop matching documents (false: only add contam_items / contam_ngrams)")
    min_ngrams: int = Field(1, ge=1, description="matching n-grams needed to count a document as contaminated")


@register_stage
class DecontaminateStage(Stage):
    """Drops documents that share n-grams with benchmark items (reason `contaminated`, detail:
    the item ids); with `drop: false` only annotates them."""

    name = "decontaminate"
    requires = ("id", "text")
    produces = {"contam_items": pa.list_(pa.string()), "contam_ngrams": pa.int64()}
    reasons = ("contaminated",)
    Params = DecontaminateParams

    def setup(self) -> None:
        from babelmill.contamination.benchmarks.loaders import load_benchmarks
        from babelmill.contamination.ngram import NgramConfig, build_index

        cfg = NgramConfig.load(self.params.ngram_config)
        self.index = None
        for b in load_benchmarks(self.params.benchmarks):
            self.index = build_index(b.items, b.name, cfg, self.index)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from babelmill.contamination.ngram import scan_record_batch

        out = scan_record_batch(batch, self.index)
        if not self.params.drop:
            return out
        hit = pc.greater_equal(out.column("contam_ngrams"), self.params.min_ngrams)
        items = out.column("contam_items")
        detail = pa.array([f"{n} n-grams of {', '.join(i[:5])}" if h else None
                           for h, n, i in zip(hit.to_pylist(), out.column("contam_ngrams").to_pylist(),
                                              items.to_pylist(), strict=True)], pa.string())
        reason = pc.if_else(hit, pa.scalar("contaminated"), pa.scalar(None, pa.string()))
        return with_drops(out, reason, detail)
