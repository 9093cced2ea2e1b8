"""fastText quality classifier per language (FineWeb-Edu / DCLM / FineWeb2-HQ style filtering
with a fastText model, as `babelmill quality-model train` trains them).

Each document is scored by its language's classifier from `models` (`<lang>.bin`/`.ftz`, else
`multilingual.bin`/`.ftz`; see pipeline/quality_models/classifier.py). `quality_score` is the
probability of the positive label. Text is prepared as the model was trained on: the model's
`<name>.metrics.json` says how ("babelmill": lower-cased, punctuation split off, unspaced
languages in characters; see pipeline/quality_models/text.py); models without one get
`preprocess` (default for them: "plain", newlines to spaces, as DCLM's and datatrove's
classifiers see text).

Drop (never with `score_only`): `quality_score_low`, below the language's `min_quality_score`
in the quality configuration layers (configs/quality.yaml, the registry's `quality:`, a
`babelmill calibrate` output).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import register_stage
from babelmill.pipeline.quality_models.classifier import (
    MULTILINGUAL,
    ClassifierFiles,
    find_classifiers,
    load_fasttext,
    positive_probability,
)
from babelmill.pipeline.quality_models.scoring import ModelScoreParams, ModelScoreStage, fmt, lang_groups
from babelmill.pipeline.quality_models.text import fasttext_lines
from babelmill.yamlconf import ConfigError


class QualityClassifierParams(ModelScoreParams):
    models: str = Field(description="directory of fastText classifiers: <lang>.bin or .ftz per language and/or "
                        "multilingual.bin (with the <name>.metrics.json that `babelmill quality-model train` writes)")
    positive_label: str = Field("hq", description="label whose probability is quality_score (without __label__)")
    preprocess: Literal["auto", "babelmill", "plain"] = Field(
        "auto", description="text preparation: auto = what the model's metrics.json says, else plain")
    max_chars: int = Field(10_000, gt=0, description="characters of each document given to models without a metrics.json")


@register_stage
class QualityClassifierStage(ModelScoreStage):
    """fastText quality classifier per language (or one multilingual model): `quality_score`
    = P(positive label), optional per-language `min_quality_score` drop."""

    name = "quality_classifier"
    produces = {"quality_score": pa.float32()}
    reasons = ("quality_score_low",)
    Params = QualityClassifierParams
    model_kind = "quality classifier"
    score_column = "quality_score"
    expected_files = "<lang>.bin or multilingual.bin"

    def setup(self, ctx: RunContext) -> None:
        self._init_common(ctx)
        self.files: dict[str, ClassifierFiles] = find_classifiers(self.params.models, self.name)
        covered = set(self.files) if MULTILINGUAL not in self.files else set(self.expected_languages()) | set(self.files)
        self.check_coverage(covered)
        self._loaded: dict[str, tuple] = {}

    def preflight(self) -> None:
        """On the driver: every model in the directory loads and has the positive label (an
        error names the file); expected languages without one are warned about (strict: error)."""
        was_ready = self._ready
        self.ensure_setup()
        for f in self.files.values():
            self._check(f, load_fasttext(f.model, self.name))
            self._prep(f)
        if not was_ready:
            self._ready = False

    def _check(self, f: ClassifierFiles, model) -> None:
        want = f"__label__{self.params.positive_label}"
        labels = model.get_labels()
        if want not in labels:
            raise ConfigError(f"{self.name}: fastText model {f.model} has no label {want} (its labels: "
                              f"{', '.join(labels[:10])}); set positive_label")

    def _prep(self, f: ClassifierFiles) -> tuple[str, int]:
        meta = f.read_metrics().get("preprocess") or {}
        kind = self.params.preprocess
        if kind == "auto":
            kind = meta.get("kind", "plain")
        if kind not in ("babelmill", "plain"):
            raise ConfigError(f"{f.metrics}: preprocess.kind {kind!r} is not babelmill or plain")
        return kind, int(meta.get("max_chars", self.params.max_chars))

    def _model(self, code: str) -> tuple | None:
        key = code if code in self.files else MULTILINGUAL if MULTILINGUAL in self.files else None
        if key is None:
            return None
        hit = self._loaded.get(key)
        if hit is None:
            f = self.files[key]
            model = load_fasttext(f.model, self.name)
            self._check(f, model)
            hit = (model, *self._prep(f))
            self._loaded[key] = hit
        return hit

    def score_texts(self, code: str, texts: pa.Array | list[str]) -> np.ndarray | None:
        m = self._model(code)
        if m is None:
            return None
        model, kind, max_chars = m
        return positive_probability(model, fasttext_lines(texts, self.spaced(code), kind, max_chars),
                                    self.params.positive_label)

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        texts = batch.column("text")
        score = np.zeros(n, dtype=np.float32)
        has = np.zeros(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for code, rows in lang_groups(batch.column("lang")):
            if code is None:
                continue
            got = self.score_texts(code, texts.take(pa.array(rows)))
            if got is None:
                self.note_missing(code)
                continue
            score[rows], has[rows] = got, True
            lo = self.layer(code).get("min_quality_score")
            if lo is not None:
                for i in rows[got < lo].tolist():
                    reasons[i], details[i] = "quality_score_low", f"quality_score={score[i]:.3f} < {fmt(lo)}"
        return self.finish(batch, {"quality_score": pa.array(score, pa.float32(), mask=~has)}, reasons, details)
