"""User stages for tests/pipeline/core/test_stage_contract.py, loaded as `module:Class` the way
a user's own stage is named in a config."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.pipeline.core.stage import Stage, StageParams, with_drops


class ShortParams(StageParams):
    min_chars: int = Field(10, description="shorter documents are dropped")


class DropShort(Stage):
    """Drops documents shorter than `min_chars`; counts its setup() calls per process."""

    name = "drop_short"
    produces = {"n_chars": pa.int64()}
    reasons = ("too_short",)
    Params = ShortParams
    setups = 0

    def setup(self):
        type(self).setups += 1
        self.limit = self.params.min_chars  # per-worker state, rebuilt after pickling

    def process(self, batch):
        n = pc.utf8_length(batch.column("text")).cast(pa.int64())
        short = pc.less(n, self.limit)
        reason = pc.if_else(short, pa.scalar("too_short"), pa.scalar(None, pa.string()))
        detail = pc.if_else(short, pa.scalar(f"fewer than {self.limit} characters"), pa.scalar(None, pa.string()))
        return with_drops(batch.append_column("n_chars", n), reason, detail)


class DropAll(Stage):
    name = "drop_all"
    reasons = ("always",)

    def process(self, batch):
        return with_drops(batch, pa.array(["always"] * batch.num_rows, pa.string()))


class LosesRows(Stage):
    name = "loses_rows"

    def process(self, batch):
        return batch.slice(1)


class NeedsLang(Stage):
    name = "needs_lang"
    requires = ("id", "text", "lang")

    def process(self, batch):
        return batch


class RecordsContext(Stage):
    """Records the run context each setup() is handed (visible with the in-process engine)."""

    name = "records_context"
    contexts: list = []

    def setup(self, ctx):
        type(self).contexts.append(ctx)

    def process(self, batch):
        return batch
