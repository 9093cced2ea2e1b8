"""KenLM perplexity per language, CCNet-style (Wenzek et al. 2020; BLOOM and FuxiTranyu filter
with it too).

Each document is scored with its language's model from `models` (a directory:
`<lang>.arpa` / `<lang>.bin`, CCNet's `<lang>.arpa.bin` with its `<lang>.sp.model`; see
pipeline/quality_models/kenlm_models.py). Text preparation follows CCNet so that published
CCNet/BLOOM models work as they are (pipeline/quality_models/text.py): CCNet normalisation,
SentencePiece pieces when the directory has the language's `.sp.model`, and
perplexity = 10 ** (-sum log10 p / (tokens + one </s> per sentence)), CCNet's `pp()`.
`unit: document` (default) scores the normalised document as one sentence, as CCNet's mining
pipeline and datatrove's CCNetPerplexityStats do; `unit: line` scores each non-empty line.

Columns: `perplexity` (float32; null when the language has no model or nothing is left to
score) and `perplexity_bucket` ("head" / "middle" / "tail" by the language's
`perplexity_head` / `perplexity_tail` cutoffs, null without cutoffs). Drops (never with
`score_only`): `perplexity_high` (above `max_perplexity`), `perplexity_bucket` (the bucket is
in `drop_perplexity_buckets`). Cutoffs and bounds are per-language data in the quality
configuration layers (configs/quality.yaml, the registry's `quality:`, a `babelmill calibrate`
output).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import register_stage
from babelmill.pipeline.quality_models.kenlm_models import (
    LmFiles,
    find_models,
    load_kenlm,
    load_sentencepiece,
)
from babelmill.pipeline.quality_models.scoring import ModelScoreParams, ModelScoreStage, fmt, lang_groups
from babelmill.pipeline.quality_models.text import NormalizeMode, lm_sentences

BUCKETS = ("head", "middle", "tail")


class PerplexityParams(ModelScoreParams):
    models: str = Field(description="directory of per-language KenLM models: <lang>.arpa[.gz|.xz|.bz2] or <lang>.bin "
                        "(CCNet/BLOOM: <lang>.arpa.bin with <lang>.sp.model), optional <lang>.lm.json sidecar")
    unit: Literal["document", "line"] = Field("document", description="document: the normalised document is one "
                                              "sentence (CCNet, datatrove); line: each non-empty line is one")
    normalize: NormalizeMode = Field("ccnet", description="text normalisation for models without a sidecar: ccnet "
                                     "(CCNet's normalize, for CCNet/BLOOM models), ccnet_keep_accents, none")


@register_stage
class PerplexityStage(ModelScoreStage):
    """KenLM perplexity per language (CCNet normalisation and SentencePiece, per-language models
    from a directory), a CCNet head/middle/tail bucket, and optional per-language drops."""

    name = "perplexity"
    produces = {"perplexity": pa.float32(), "perplexity_bucket": pa.string()}
    reasons = ("perplexity_high", "perplexity_bucket")
    Params = PerplexityParams
    model_kind = "KenLM model"
    score_column = "perplexity"
    expected_files = "<lang>.arpa or <lang>.bin"

    def setup(self, ctx: RunContext) -> None:
        self._init_common(ctx)
        self.files: dict[str, LmFiles] = find_models(self.params.models, self.name)
        self.check_coverage(set(self.files))
        self._loaded: dict[str, tuple] = {}

    def preflight(self) -> None:
        """On the driver before any worker starts: the directory exists, every model, SentencePiece
        model and sidecar in it loads (an error names the file), and each expected language
        without a model is warned about once (strict: an error)."""
        was_ready = self._ready
        self.ensure_setup()
        for f in self.files.values():
            self._tokens(f, f.read_sidecar(), f.sp_model is not None)
            load_kenlm(f.model, self.name, lazy=True)
            if f.sp_model is not None:
                load_sentencepiece(f.sp_model, self.name)
        if not was_ready:
            self._ready = False

    def _tokens(self, f: LmFiles, side, has_sp: bool) -> str:
        """The model's tokens: SentencePiece when the directory pairs it with one, else its
        sidecar's, else words / characters by the registry's space_delimited."""
        if has_sp:
            return "sentencepiece"
        if side.tokens == "sentencepiece":
            from babelmill.yamlconf import ConfigError

            raise ConfigError(f"{f.sidecar}: tokens: sentencepiece, but there is no {f.lang}.sp.model in {self.params.models}")
        return side.tokens or ("words" if self.spaced(f.lang) else "chars")

    def _model(self, code: str) -> tuple | None:
        hit = self._loaded.get(code)
        if hit is None:
            f = self.files.get(code)
            if f is None:
                return None
            side = f.read_sidecar()
            tokens = self._tokens(f, side, f.sp_model is not None)
            sp = load_sentencepiece(f.sp_model, self.name) if f.sp_model is not None else None
            hit = (load_kenlm(f.model, self.name), sp, tokens, side.normalize or self.params.normalize,
                   side.unit or self.params.unit)
            self._loaded[code] = hit
        return hit

    def score_texts(self, code: str, texts: list[str]) -> np.ndarray | None:
        """Perplexities of `texts` under `code`'s model (NaN where nothing is left to score);
        None when the language has no model."""
        m = self._model(code)
        if m is None:
            return None
        model, sp, tokens, normalize, unit = m
        out = np.full(len(texts), np.nan)
        score = model.score
        for j, sents in enumerate(lm_sentences(texts, unit, normalize, tokens, sp)):
            if not sents:
                continue
            logp, length = 0.0, 0
            for s in sents:
                logp += score(s, bos=True, eos=True)
                length += s.count(" ") + 2  # tokens + </s>
            out[j] = 10.0 ** (-logp / length)
        return out

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        texts = batch.column("text").to_pylist()
        ppl = np.full(n, np.nan)
        buckets: list[str | None] = [None] * n
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        for code, rows in lang_groups(batch.column("lang")):
            if code is None:
                continue
            got = self.score_texts(code, [texts[i] or "" for i in rows])
            if got is None:
                self.note_missing(code)
                continue
            ppl[rows] = got
            t = self.layer(code)
            head, tail = t.get("perplexity_head"), t.get("perplexity_tail")
            top, drop_b = t.get("max_perplexity"), set(t.get("drop_perplexity_buckets") or ())
            for i, v in zip(rows.tolist(), got.tolist(), strict=True):
                if math.isnan(v):
                    continue
                b = None
                if head is not None and tail is not None:
                    b = "head" if v < head else "middle" if v < tail else "tail"
                buckets[i] = b
                if top is not None and v > top:
                    reasons[i], details[i] = "perplexity_high", f"perplexity={v:.1f} > {fmt(top)}"
                elif b is not None and b in drop_b:
                    reasons[i] = "perplexity_bucket"
                    details[i] = f"bucket={b} (perplexity={v:.1f}; head < {fmt(head)}, tail >= {fmt(tail)})"
        cols = {"perplexity": pa.array(ppl.astype(np.float32), pa.float32(), mask=np.isnan(ppl)),
                "perplexity_bucket": pa.array(buckets, pa.string())}
        return self.finish(batch, cols, reasons, details)
