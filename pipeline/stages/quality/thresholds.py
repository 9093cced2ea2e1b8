"""The quality thresholds as data: the schema of configs/quality.yaml (and of `babelmill
calibrate`'s output, which has the same shape) and its loading.

Layers, lowest to highest precedence: `defaults:` -> `unspaced:` (languages with
`space_delimited: false`) -> the config's `languages: {code: ...}` -> the registry's
per-language `quality:` dict. A key set to null disables that bound. Merging the layers for
one language is `rules.QualityRules.layers`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from babelmill.paths import config_file
from babelmill.yamlconf import ConfigError, load_model

DEFAULT_CONFIG = config_file("quality.yaml")


class Thresholds(BaseModel):
    """One layer of thresholds. Only keys that are set override lower layers; null disables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: float | None = None
    max_words: float | None = None
    min_chars: float | None = None
    max_chars: float | None = None
    min_mean_word_length: float | None = None
    max_mean_word_length: float | None = None
    max_symbol_ratio: float | None = None
    max_bullet_lines_frac: float | None = None
    max_ellipsis_lines_frac: float | None = None
    min_alpha_words_frac: float | None = None
    min_stop_words: float | None = None
    stop_words_top_n: int | None = Field(None, ge=1)
    max_lorem_ipsum: float | None = None
    max_curly_brace_ratio: float | None = None
    max_javascript_lines_frac: float | None = None
    max_dup_para_frac: float | None = None
    max_dup_para_char_frac: float | None = None
    max_dup_line_frac: float | None = None
    max_dup_line_char_frac: float | None = None
    max_top_2gram_frac: float | None = None
    max_top_3gram_frac: float | None = None
    max_top_4gram_frac: float | None = None
    max_dup_5gram_frac: float | None = None
    max_dup_6gram_frac: float | None = None
    max_dup_7gram_frac: float | None = None
    max_dup_8gram_frac: float | None = None
    max_dup_9gram_frac: float | None = None
    max_dup_10gram_frac: float | None = None
    min_terminal_punct_frac: float | None = None
    max_short_lines_frac: float | None = None
    short_line_chars: int | None = Field(None, ge=0)
    #: Terminal punctuation characters of the language (overrides the per-script table);
    #: "" = the language has none (the terminal_punct check is skipped).
    terminal_punctuation: str | None = None
    # -- model-based scores: read by the `perplexity` and `quality_classifier` stages --------
    #: CCNet-style buckets: perplexity < perplexity_head -> "head", < perplexity_tail ->
    #: "middle", else "tail" (`babelmill calibrate` proposes the 30th/60th percentiles, as CCNet)
    perplexity_head: float | None = Field(None, gt=0)
    perplexity_tail: float | None = Field(None, gt=0)
    #: drop documents whose perplexity is above this (reason `perplexity_high`)
    max_perplexity: float | None = Field(None, gt=0)
    #: drop documents in these buckets (reason `perplexity_bucket`), e.g. [tail]
    drop_perplexity_buckets: list[Literal["head", "middle", "tail"]] | None = None
    #: drop documents whose quality_score is below this (reason `quality_score_low`)
    min_quality_score: float | None = Field(None, ge=0, le=1)


class Punctuation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Added to every language that has terminal punctuation at all.
    common: str = ".!?\"'”’»"
    #: ISO 15924 script -> its own terminal punctuation; null = the script has none.
    scripts: dict[str, str | None] = Field(default_factory=dict)


class QualityFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = 1
    defaults: Thresholds = Field(default_factory=Thresholds)
    unspaced: Thresholds = Field(default_factory=Thresholds)
    languages: dict[str, Thresholds] = Field(default_factory=dict)
    terminal_punctuation: Punctuation = Field(default_factory=Punctuation)
    #: Free-form: who/what produced the file (written by `babelmill calibrate`).
    provenance: dict[str, Any] | None = None


@lru_cache(maxsize=16)
def _load_config(path: str, mtime: float) -> QualityFile:
    return load_model(QualityFile, path)


def load_quality_config(path: str | Path | None = None) -> QualityFile:
    """The thresholds file at `path` (default configs/quality.yaml), parsed once per content:
    the cache is keyed by modification time, so an edited file is read again."""
    p = Path(path or DEFAULT_CONFIG)
    if not p.is_file():
        raise ConfigError(f"{p}: quality config not found")
    return _load_config(str(p.resolve()), p.stat().st_mtime)
