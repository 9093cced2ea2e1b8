"""Decontamination: remove (or mark) documents that contain benchmark items, using the same
n-gram index as the contamination audit's overlap scan (babelmill.contamination.ngram):
word n-grams for spaced scripts, character n-grams for unspaced ones, per the registry.

The registry is the run's (its `languages:`, as for every other stage), or this stage's own
`registry` parameter: the n-gram index and the benchmark loaders look the registry up with
load_registry() themselves, so setup() builds them inside `ctx.activate(...)`, which makes
that registry the current one for the duration (babelmill.languages.use_registry)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import Stage, StageParams, register_stage, with_drops


class DecontaminateParams(StageParams):
    benchmarks: list[str] = Field(min_length=1, description="benchmark files or folders (any format `babelmill audit` reads)")
    ngram_config: str | None = Field(None, description="n-gram sizes YAML (default configs/contamination/ngram.yaml)")
    drop: bool = Field(True, description="drop matching documents (false: only add contam_items / contam_ngrams)")
    min_ngrams: int = Field(1, ge=1, description="matching n-grams needed to count a document as contaminated")
    registry: str | None = Field(None, description="language registry YAML (default: the run's)")


@register_stage
class DecontaminateStage(Stage):
    """Drops documents that share n-grams with benchmark items (reason `contaminated`, detail:
    the item ids); with `drop: false` only annotates them."""

    name = "decontaminate"
    requires = ("id", "text")
    produces = {"contam_items": pa.list_(pa.string()), "contam_ngrams": pa.int64()}
    reasons = ("contaminated",)
    Params = DecontaminateParams

    def setup(self, ctx: RunContext) -> None:
        from babelmill.contamination import ngram
        from babelmill.contamination.benchmarks.loaders import load_benchmarks

        cfg = ngram.NgramConfig.load(self.params.ngram_config)
        self.index = None
        # ngram caches each language's scripts per process, whatever the registry: forget them
        # before (this run's registry) and after (the next user's)
        forget = getattr(getattr(ngram, "_allowed_script_ids", None), "cache_clear", lambda: None)
        with ctx.activate(self.params.registry):
            forget()
            try:
                for b in load_benchmarks(self.params.benchmarks):
                    self.index = ngram.build_index(b.items, b.name, cfg, self.index)
            finally:
                forget()

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
