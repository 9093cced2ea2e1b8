"""What the `perplexity` and `quality_classifier` stages share.

- a model directory with one model per language (found once per worker, each model loaded
  the first time a document of its language arrives, then kept for the worker's lifetime);
- per-language bounds from the quality configuration layers (configs/quality.yaml `defaults`
  -> `unspaced` -> `languages.<code>` -> the registry's `quality:`; `babelmill calibrate`
  writes the same shape), read through the quality stage's own `QualityRules`;
- languages without a model: their documents pass with a null score, with one warning per
  language (on the driver before the run, through `preflight`); with `strict` the run stops
  before any worker starts, naming the language(s) and the directory;
- `score_only`: annotate, never drop.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import Stage, StageError, StageParams
from babelmill.yamlconf import ConfigError

log = logging.getLogger("babelmill.quality_models")

#: (stage, model directory, language) already warned about in this process
_WARNED: set[tuple[str, str, str]] = set()


class ModelScoreParams(StageParams):
    models: str = Field(description="directory of per-language models (see the README, \"Model-based quality filtering\")")
    registry: str | None = Field(None, description="language registry YAML (default: the run's)")
    config: str | None = Field(None, description="quality thresholds YAML whose layers hold this stage's per-language "
                               "bounds (default configs/quality.yaml; a `babelmill calibrate` output works too)")
    languages: list[str] | None = Field(None, description="languages expected to have a model (default: every registry "
                                        "language); documents of other languages pass with a null score, unwarned")
    score_only: bool = Field(False, description="annotate only: add the score columns, drop nothing")
    strict: bool = Field(False, description="an expected language without a model is an error at start-up "
                         "(default: a warning, and its documents pass with a null score)")


def lang_groups(langs: pa.Array | pa.ChunkedArray) -> list[tuple[str | None, np.ndarray]]:
    """(language code, row indices) for each language present in a batch; null as None."""
    if isinstance(langs, pa.ChunkedArray):
        langs = langs.combine_chunks()
    enc = pc.dictionary_encode(langs)
    idx = pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)
    out: list[tuple[str | None, np.ndarray]] = []
    for k, code in enumerate(enc.dictionary.to_pylist()):
        rows = np.flatnonzero(idx == k)
        if len(rows):
            out.append((code, rows))
    nulls = np.flatnonzero(idx == -1)
    if len(nulls):
        out.append((None, nulls))
    return out


class ModelScoreStage(Stage):
    """Base of the model-scoring stages (see the module docstring)."""

    requires = ("id", "text", "lang")
    #: what the model is called in messages
    model_kind = "model"
    #: the score column named in messages
    score_column = "score"
    #: file names a language's model may have, for messages
    expected_files = "<lang>.bin"

    def _init_common(self, ctx: RunContext) -> None:
        """Per-worker state both stages share; `ctx` is the RunContext setup() was handed."""
        from babelmill.pipeline.stages.quality import QualityRules

        p = self.params
        self.reg = ctx.registry_for(p.registry)
        self.rules = QualityRules(p.config, self.reg)
        self._layers: dict[str | None, dict[str, Any]] = {}

    # -- per-language configuration ------------------------------------------------------------
    def layer(self, code: str | None) -> dict[str, Any]:
        hit = self._layers.get(code)
        if hit is None:
            hit = self.rules.layers(code)
            self._layers[code] = hit
        return hit

    def spaced(self, code: str | None) -> bool:
        return code is None or code not in self.reg or self.reg.get(code).space_delimited

    def expected_languages(self) -> list[str]:
        return list(self.params.languages) if self.params.languages is not None else list(self.reg.codes)

    def _name(self, code: str) -> str:
        return f"'{code}' ({self.reg.get(code).name})" if code in self.reg else f"'{code}'"

    # -- missing models --------------------------------------------------------------------------
    def check_coverage(self, covered: set[str]) -> None:
        """Warn once per expected language without a model (strict: a ConfigError)."""
        missing = [c for c in self.expected_languages() if c not in covered]
        if not missing:
            return
        d = self.params.models
        if self.params.strict:
            raise ConfigError(
                f"{self.name}: no {self.model_kind} for language(s) {', '.join(self._name(c) for c in missing)} "
                f"in {d} (expected {self.expected_files}; strict)")
        for c in missing:
            self._warn(c)

    def _warn(self, code: str) -> None:
        key = (self.name, str(self.params.models), code)
        if key in _WARNED:
            return
        _WARNED.add(key)
        log.warning("%s: no %s for language %s in %s (expected %s): its documents pass with a null %s",
                    self.name, self.model_kind, self._name(code), self.params.models,
                    self.expected_files.replace("<lang>", code), self.score_column)

    def note_missing(self, code: str | None) -> None:
        """A batch has documents of `code` and there is no model for it."""
        if code is None:
            return  # no language: nothing to pick a model by
        if self.params.languages is not None and code not in self.params.languages:
            return  # not a language this stage was asked to score
        if self.params.strict:
            raise StageError(f"{self.name}: no {self.model_kind} for language {self._name(code)} in "
                             f"{self.params.models} (expected {self.expected_files.replace('<lang>', code)}; strict)")
        self._warn(code)

    # -- drops -------------------------------------------------------------------------------------
    def finish(self, batch: pa.RecordBatch, columns: dict[str, pa.Array], reasons: list, details: list) -> pa.RecordBatch:
        from babelmill.pipeline.core.stage import with_drops

        out = batch
        for name, arr in columns.items():
            if name in out.schema.names:
                out = out.drop_columns([name])
            out = out.append_column(name, arr)
        if self.params.score_only:
            return out
        return with_drops(out, pa.array(reasons, pa.string()), pa.array(details, pa.string()))


def fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.4g}"
