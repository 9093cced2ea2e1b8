"""The heuristic rules: which filters exist and, per language, their bounds and the language
facts the statistics need.

Filters run in this fixed order; the first one that fails is the reported reason
(`drop_reason = "q_<filter>"`, `drop_detail = "<stat>=<measured> <op> <threshold>"`):

    word_count (q_word_count / q_char_count), mean_word_length, symbol_ratio, lorem_ipsum,
    curly_brace, bullet_lines, ellipsis_lines, alpha_words, stop_words, javascript,
    dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac,
    top_2gram, top_3gram, top_4gram, dup_5gram ... dup_10gram, terminal_punct, short_lines

For languages whose registry entry says `space_delimited: false` the word-count bounds are
character bounds (`min_chars`/`max_chars`, reason `q_char_count`), the mean-word-length check
does not apply and the thresholds come from the `unspaced:` section of the config.
`QualityRules` is shared by the stage and by `babelmill calibrate`, so that calibration
proposes bounds for exactly what the stage compares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from babelmill.languages import LanguageRegistry, load_registry
from babelmill.pipeline.stages.quality.stats import DUP_NS, TOP_NS, LangProfile
from babelmill.pipeline.stages.quality.thresholds import (
    DEFAULT_CONFIG,
    QualityFile,
    Thresholds,
    load_quality_config,
)
from babelmill.text import stop_words, wordfreq_languages
from babelmill.yamlconf import ConfigError


@dataclass(frozen=True)
class Filter:
    name: str  # reason = "q_" + name
    stat: str  # statistic (annotation column "q_" + stat)
    lo: str | None  # config key of the lower bound (fail if stat < lo)
    hi: str | None  # config key of the upper bound (fail if stat > hi)
    group: str  # which part of compute_stats it needs


FILTERS: tuple[Filter, ...] = (
    Filter("word_count", "word_count", "min_words", "max_words", "words"),
    Filter("mean_word_length", "mean_word_length", "min_mean_word_length", "max_mean_word_length", "words"),
    Filter("symbol_ratio", "symbol_ratio", None, "max_symbol_ratio", "words"),
    Filter("lorem_ipsum", "lorem_ipsum", None, "max_lorem_ipsum", "text"),
    Filter("curly_brace", "curly_brace_ratio", None, "max_curly_brace_ratio", "words"),
    Filter("bullet_lines", "bullet_lines_frac", None, "max_bullet_lines_frac", "lines"),
    Filter("ellipsis_lines", "ellipsis_lines_frac", None, "max_ellipsis_lines_frac", "lines"),
    Filter("alpha_words", "alpha_words_frac", "min_alpha_words_frac", None, "words"),
    Filter("stop_words", "stop_words", "min_stop_words", None, "stop"),
    Filter("javascript", "javascript_lines_frac", None, "max_javascript_lines_frac", "lines"),
    Filter("dup_para_frac", "dup_para_frac", None, "max_dup_para_frac", "paras"),
    Filter("dup_para_char_frac", "dup_para_char_frac", None, "max_dup_para_char_frac", "paras"),
    Filter("dup_line_frac", "dup_line_frac", None, "max_dup_line_frac", "lines"),
    Filter("dup_line_char_frac", "dup_line_char_frac", None, "max_dup_line_char_frac", "lines"),
    *(Filter(f"top_{n}gram", f"top_{n}gram_frac", None, f"max_top_{n}gram_frac", "ngrams") for n in TOP_NS),
    *(Filter(f"dup_{n}gram", f"dup_{n}gram_frac", None, f"max_dup_{n}gram_frac", "ngrams") for n in DUP_NS),
    Filter("terminal_punct", "terminal_punct_frac", "min_terminal_punct_frac", None, "lines"),
    Filter("short_lines", "short_lines_frac", None, "max_short_lines_frac", "lines"),
)
FILTER_NAMES = tuple(f.name for f in FILTERS)
STAT_NAMES = tuple(f.stat for f in FILTERS)
REASONS = ("q_word_count", "q_char_count", *(f"q_{f.name}" for f in FILTERS[1:]))


class QualityRules:
    """Thresholds and language profiles, resolved per language from the config and the registry
    (shared by the stage and by `babelmill calibrate`)."""

    def __init__(self, config: str | Path | QualityFile | None = None, registry: str | LanguageRegistry | None = None):
        self.cfg = config if isinstance(config, QualityFile) else load_quality_config(config)
        self.config_path = None if isinstance(config, QualityFile) else str(config or DEFAULT_CONFIG)
        self.reg = registry if isinstance(registry, LanguageRegistry) else load_registry(registry)
        self._cache: dict[str | None, tuple[dict[str, Any], LangProfile]] = {}

    def spaced(self, code: str | None) -> bool:
        return code is None or code not in self.reg or self.reg.get(code).space_delimited

    def layers(self, code: str | None) -> dict[str, Any]:
        """The merged thresholds of `code` (null values mean: disabled)."""
        lang = self.reg.get(code) if code is not None and code in self.reg else None
        spaced = lang.space_delimited if lang is not None else True
        out: dict[str, Any] = dict(self.cfg.defaults.model_dump(exclude_unset=True))
        if not spaced:
            out.update(self.cfg.unspaced.model_dump(exclude_unset=True))
        if code in self.cfg.languages:
            out.update(self.cfg.languages[code].model_dump(exclude_unset=True))
        if lang is not None and lang.quality:
            try:
                out.update(Thresholds.model_validate(lang.quality).model_dump(exclude_unset=True))
            except ValidationError as e:
                problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
                raise ConfigError(f"{self.reg.path}: languages.{code}.quality: {problems}") from None
        return out

    def resolve(self, code: str | None) -> tuple[dict[str, Any], LangProfile]:
        hit = self._cache.get(code)
        if hit is not None:
            return hit
        t = self.layers(code)
        lang = self.reg.get(code) if code is not None and code in self.reg else None
        spaced = lang.space_delimited if lang is not None else True
        if not spaced:  # the word-count bounds of character-based scripts are in characters
            t["min_words"], t["max_words"] = t.get("min_chars"), t.get("max_chars")
        # stop words: the language's wordfreq list, when it has one
        wf = None
        if lang is not None and lang.wordfreq:
            wf = lang.wordfreq
        elif code is not None and code in wordfreq_languages():
            wf = code
        stop = None
        if wf is not None and t.get("min_stop_words") is not None:
            words = stop_words(wf, int(t.get("stop_words_top_n") or 100))
            stop = words if spaced else frozenset(w for w in words if len(w) == 1)
        # terminal punctuation: explicit per-language set, else union over the language's scripts
        punct = t.get("terminal_punctuation")
        if punct is None:
            pt = self.cfg.terminal_punctuation
            scripts = lang.scripts if lang is not None else ["Latn"]
            if scripts[0] in pt.scripts and pt.scripts[scripts[0]] is None:
                punct = ""  # the usual script has no terminal punctuation (Thai, Lao)
            else:
                punct = pt.common + "".join(pt.scripts.get(s) or "" for s in scripts)
        prof = LangProfile(
            code=code,
            spaced=spaced,
            stop_words=stop,
            punctuation="".join(dict.fromkeys(punct)) or None,
            short_line_chars=int(t.get("short_line_chars") or 0),
        )
        if stop is None:
            t["min_stop_words"] = None
        if prof.punctuation is None:
            t["min_terminal_punct_frac"] = None
        self._cache[code] = (t, prof)
        return t, prof

    def bounds(self, code: str | None, f: Filter) -> tuple[float, float]:
        t = self.resolve(code)[0]
        lo = t.get(f.lo) if f.lo else None
        hi = t.get(f.hi) if f.hi else None
        return (math.nan if lo is None else float(lo), math.nan if hi is None else float(hi))
