"""Per-language heuristic quality filters (Gopher quality + repetition, C4, FineWeb).

Every statistic is computed for a whole batch at once: texts are split into words, lines and
paragraphs by Arrow compute kernels (one C++ pass each), the pieces are dictionary-encoded to
integers, and all per-document counts are `numpy.bincount`s over "parent document" indices.
Word n-gram repetition is computed over rolling 64-bit hashes of word ids, again for the whole
batch, chaining candidates: an n-gram can only repeat where its (n-1)-gram prefix repeats, so
each longer n only looks at the positions that are still repeated.

Words. For space-delimited languages a word is a maximal run of letters, combining marks,
digits and `_` (`[\\pL\\pM\\pN_]+`, lowercased). That is Python's `\\w+` plus combining marks:
`\\w` splits Devanagari, Bengali, Tamil, ... words at every vowel sign. For languages whose
registry entry says `space_delimited: false` (zh ja th lo km my) the unit is one character
(a letter, mark or digit code point): word counts are character counts (reason
`q_char_count`), n-gram checks run over character n-grams, the mean-word-length check does
not apply, and the thresholds come from the `unspaced:` section of the config.

Character fractions of n-grams (`top_Ngram_frac`, `dup_Ngram_frac`) are measured against the
characters of the words (spaces and punctuation excluded), as in RedPajama-v2's Gopher
signals, so that they mean the same for spaced and unspaced scripts. `top` = the most frequent
n-gram (ties: the one with most characters) times its count, 0 when no n-gram repeats; `dup` =
characters of the words covered by a second or later occurrence of a repeated n-gram.

Filters run in this fixed order; the first one that fails is the reported reason
(`drop_reason = "q_<filter>"`, `drop_detail = "<stat>=<measured> <op> <threshold>"`):

    word_count (q_word_count / q_char_count), mean_word_length, symbol_ratio, lorem_ipsum,
    curly_brace, bullet_lines, ellipsis_lines, alpha_words, stop_words, javascript,
    dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac,
    top_2gram, top_3gram, top_4gram, dup_5gram ... dup_10gram, terminal_punct, short_lines

Thresholds (configs/quality.yaml), lowest to highest precedence: `defaults:` -> `unspaced:`
(languages with `space_delimited: false`) -> the config's `languages: {code: ...}` -> the
registry's per-language `quality:` dict. A key set to null disables that bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from babelmill.languages import DEFAULT_PATH as _REGISTRY_PATH
from babelmill.languages import LanguageRegistry, load_registry
from babelmill.pipeline.core.stage import Stage, StageError, StageParams, register_stage, with_drops
from babelmill.scripts import category_table
from babelmill.yamlconf import ConfigError, load_model

DEFAULT_CONFIG = _REGISTRY_PATH.parent / "quality.yaml"

WORD_SEP = r"[^\pL\pM\pN_]+"  # RE2: words are runs of letters, marks, digits, underscore
PARA_SEP = r"\n[ \t\r\f\v]*\n"
BULLET_RE = r"^[-•*·‣◦▪▫►▸●○■□➢➤✓✔❖]"
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)


# -- configuration ----------------------------------------------------------------------------
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
    p = Path(path or DEFAULT_CONFIG)
    if not p.is_file():
        raise ConfigError(f"{p}: quality config not found")
    return _load_config(str(p.resolve()), p.stat().st_mtime)


# -- filters -----------------------------------------------------------------------------------
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
_INT_STATS = {"word_count", "stop_words", "lorem_ipsum"}


@dataclass(frozen=True)
class LangProfile:
    """What compute_stats needs to know about a document's language."""

    code: str | None
    spaced: bool = True
    stop_words: frozenset[str] | None = None  # None: no list, the stop-word check is skipped
    punctuation: str | None = ".!?\"'”’»"  # None: no terminal punctuation, check skipped
    short_line_chars: int = 30


@lru_cache(maxsize=256)
def _stop_words(wf_code: str, top_n: int) -> frozenset[str]:
    import wordfreq

    return frozenset(wordfreq.top_n_list(wf_code, top_n, wordlist="small"))


@lru_cache(maxsize=1)
def _wordfreq_languages() -> frozenset[str]:
    import wordfreq

    return frozenset(wordfreq.available_languages())


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
        elif code is not None and code in _wordfreq_languages():
            wf = code
        stop = None
        if wf is not None and t.get("min_stop_words") is not None:
            words = _stop_words(wf, int(t.get("stop_words_top_n") or 100))
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


# -- statistics --------------------------------------------------------------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_P = np.uint64(0x100000001B3)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (uint64 in, uint64 out; wraps)."""
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(len(a), dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def _np(a: pa.Array | pa.ChunkedArray, dtype=None) -> np.ndarray:
    if isinstance(a, pa.ChunkedArray):
        a = a.combine_chunks()
    out = a.to_numpy(zero_copy_only=False)
    return out.astype(dtype) if dtype is not None else out


def _group(key: np.ndarray, need_first: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """For each element of `key`: how many elements share its value, and (if `need_first`)
    whether it is the first (lowest index) of them. One unstable (SIMD) argsort; np.unique
    would need a stable sort and an inverse, several times slower."""
    m = len(key)
    order = np.argsort(key)
    sk = key[order]
    flag = np.empty(m, dtype=bool)
    flag[:1] = True
    np.not_equal(sk[1:], sk[:-1], out=flag[1:])
    starts = np.flatnonzero(flag)
    counts = np.diff(np.append(starts, m))
    c = np.empty(m, dtype=np.int64)
    c[order] = np.repeat(counts, counts)
    if not need_first:
        return c, None
    first = np.zeros(m, dtype=bool)
    first[np.minimum.reduceat(order, starts)] = True
    return c, first


def _byte_counts(texts: pa.Array, n: int) -> dict[str, np.ndarray]:
    """Per document counts of '#', '{', '}', '...' (non-overlapping runs of dots) and '…', from
    the UTF-8 bytes of the whole array at once (ASCII bytes never occur inside multi-byte
    characters, so byte matches are character matches)."""
    if texts.type != pa.large_string():
        texts = texts.cast(pa.large_string())
    out = {k: np.zeros(n) for k in ("#", "{", "}", "...", "…")}
    if n == 0:
        return out
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64)[texts.offset : texts.offset + n + 1]
    base = int(offsets[0])
    data = np.frombuffer(texts.buffers()[2], dtype=np.uint8)[base : int(offsets[-1])] if texts.buffers()[2] else \
        np.zeros(0, np.uint8)
    rel = offsets - base

    def per_doc(pos: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        doc = np.searchsorted(rel, pos, side="right") - 1
        return np.bincount(doc, weights=weights, minlength=n).astype(np.float64)[:n]

    for ch in ("#", "{", "}"):
        out[ch] = per_doc(np.flatnonzero(data == ord(ch)))
    dots = np.zeros(len(data) + 2, dtype=np.int8)
    dots[1:-1] = data == 0x2E
    edge = np.diff(dots)
    starts, ends = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    runs = (ends - starts) // 3
    keep = runs > 0
    out["..."] = per_doc(starts[keep], runs[keep].astype(np.float64))
    if len(data) >= 3:
        hit = (data[:-2] == 0xE2) & (data[1:-1] == 0x80) & (data[2:] == 0xA6)
        out["…"] = per_doc(np.flatnonzero(hit))
    return out


def _dups(pieces: pa.Array, parent: np.ndarray, lengths: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per document: number of pieces equal to an earlier piece of the same document, and their
    characters."""
    if len(pieces) == 0:
        return np.zeros(n), np.zeros(n)
    enc = pc.dictionary_encode(pieces)
    ids = _np(enc.indices, np.int64)
    _, first = _group(parent * (len(enc.dictionary) + 1) + ids)
    dup = ~first
    return (np.bincount(parent[dup], minlength=n).astype(np.float64),
            np.bincount(parent[dup], weights=lengths[dup], minlength=n))


def _ngram_stats(ids: np.ndarray, ulen: np.ndarray, parent: np.ndarray, n_docs: int, unit_chars: np.ndarray,
                 out: dict[str, np.ndarray]) -> None:
    """top_{2,3,4}gram_frac and dup_{5..10}gram_frac over the unit stream (units of one document
    contiguous; n-grams never cross documents)."""
    for n in TOP_NS:
        out[f"top_{n}gram_frac"] = np.zeros(n_docs)
    for n in DUP_NS:
        out[f"dup_{n}gram_frac"] = np.zeros(n_docs)
    total = len(ids)
    if total < 2:
        return
    h1 = _mix(ids)
    cum = np.concatenate([[0], np.cumsum(ulen)])
    cand = np.arange(total, dtype=np.int64)
    # the document is part of the hash, so equal n-grams of different documents never group
    h = h1 ^ _mix(parent.astype(np.uint64) + np.uint64(0x5851F42D4C957F2D))
    with np.errstate(over="ignore"):
        for n in range(2, DUP_NS[-1] + 1):
            last = cand + (n - 1)
            ok = last < total
            if not ok.all():
                cand, h, last = cand[ok], h[ok], last[ok]
            ok = parent[last] == parent[cand]
            cand, h, last = cand[ok], h[ok], last[ok]
            if len(cand) < 2:
                return
            h = h * _P + h1[last]
            c, first = _group(h, need_first=n >= DUP_NS[0])
            rep = c > 1
            if not rep.any():
                return
            if n in TOP_NS:
                rc, rpos = c[rep], cand[rep]
                rd = parent[rpos]
                chars = cum[rpos + n] - cum[rpos]
                mc = np.zeros(n_docs, dtype=np.int64)
                np.maximum.at(mc, rd, rc)
                best = rc == mc[rd]
                tc = np.zeros(n_docs, dtype=np.int64)
                np.maximum.at(tc, rd[best], chars[best])
                out[f"top_{n}gram_frac"] = _div((mc * tc).astype(np.float64), unit_chars)
            if n in DUP_NS:
                starts = cand[rep & ~first]
                diff = np.zeros(total + 1, dtype=np.int32)
                diff[starts] += 1
                np.subtract.at(diff, starts + n, 1)
                covered = np.cumsum(diff[:-1]) > 0
                out[f"dup_{n}gram_frac"] = _div(
                    np.bincount(parent[covered], weights=ulen[covered], minlength=n_docs), unit_chars)
            cand, h = cand[rep], h[rep]


def compute_stats(texts: pa.Array | pa.ChunkedArray | list[str | None], lang_idx: np.ndarray,
                  profiles: list[LangProfile], groups: set[str] | None = None) -> dict[str, np.ndarray]:
    """Every quality statistic for every document, as float64 arrays (NaN = not measured).

    `lang_idx[i]` indexes `profiles` for document i. `groups` limits the work to the statistics
    some filters need ("words", "stop", "text", "lines", "paras", "ngrams"); None = all."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = pc.fill_null(texts, "")
    n = len(texts)
    g = set(groups) if groups is not None else {"words", "stop", "text", "lines", "paras", "ngrams"}
    out: dict[str, np.ndarray] = {}
    lang_idx = np.asarray(lang_idx, dtype=np.int64)
    spaced_p = np.array([p.spaced for p in profiles], dtype=bool)
    spaced = spaced_p[lang_idx] if n else np.zeros(0, dtype=bool)
    nchars = _np(pc.utf8_length(texts), np.float64)

    if g & {"words", "stop", "ngrams", "text"}:
        lower = pc.utf8_lower(texts)  # for "text" only the few lorem-ipsum hits need it
    if g & {"words", "stop", "ngrams"}:
        # spaced documents: words
        sp = np.flatnonzero(spaced)
        ids_l, len_l, par_l, alpha_l = [], [], [], []
        stop_count = np.full(n, np.nan)
        if len(sp):
            wl = pc.split_pattern_regex(lower.take(pa.array(sp)), WORD_SEP)
            flat = pc.list_flatten(wl)
            par = sp[_np(pc.list_parent_indices(wl), np.int64)]
            wlen = _np(pc.utf8_length(flat), np.int64)
            keep = wlen > 0
            flat = flat.filter(pa.array(keep))
            par, wlen = par[keep], wlen[keep]
            enc = pc.dictionary_encode(flat)
            ids = _np(enc.indices, np.int64)
            dictionary = enc.dictionary
            alpha_d = _np(pc.match_substring_regex(dictionary, r"\pL"), bool)
            ids_l.append(ids)
            len_l.append(wlen)
            par_l.append(par)
            alpha_l.append(alpha_d[ids] if len(ids) else np.zeros(0, bool))
            if "stop" in g:
                word_lang = lang_idx[par]
                is_stop = np.zeros(len(ids), dtype=bool)
                for p in np.unique(lang_idx[sp]):
                    sw = profiles[p].stop_words
                    if sw is None:
                        continue
                    docs = sp[lang_idx[sp] == p]
                    stop_count[docs] = 0
                    m = word_lang == p
                    mask_d = _np(pc.is_in(dictionary, value_set=pa.array(sorted(sw), dictionary.type)), bool)
                    is_stop[m] = mask_d[ids[m]]
                if is_stop.any():
                    key = np.unique(par[is_stop] * (len(dictionary) + 1) + ids[is_stop])
                    cnt = np.bincount(key // (len(dictionary) + 1), minlength=n)
                    has = ~np.isnan(stop_count)
                    stop_count[has] = cnt[has]
            offset = len(dictionary)
        else:
            offset = 0
        # unspaced documents: letter/mark/digit code points
        us = np.flatnonzero(~spaced)
        if len(us):
            table = category_table()
            sub = lower.take(pa.array(us)).to_pylist()
            lens = np.fromiter(map(len, sub), dtype=np.int64, count=len(sub))
            cps = np.frombuffer("".join(sub).encode("utf-32-le", "replace"), dtype=np.uint32)
            cat = table[cps]
            keep = cat > 0
            cps = cps[keep].astype(np.int64)
            par = np.repeat(us, lens)[keep]
            ids_l.append(cps + offset)
            len_l.append(np.ones(len(cps), dtype=np.int64))
            par_l.append(par)
            alpha_l.append(cat[keep] < 3)
            if "stop" in g:
                for p in np.unique(lang_idx[us]):
                    sw = profiles[p].stop_words
                    if sw is None:
                        continue
                    docs = us[lang_idx[us] == p]
                    stop_count[docs] = 0
                    m = lang_idx[par] == p
                    stop_cps = np.array(sorted(ord(w) for w in sw), dtype=np.int64)
                    hit = m & np.isin(cps, stop_cps)
                    if hit.any():
                        key = np.unique(par[hit] * 0x110000 + cps[hit])
                        cnt = np.bincount(key // 0x110000, minlength=n)
                        stop_count[docs] = cnt[docs]
        ids = np.concatenate(ids_l) if ids_l else np.zeros(0, np.int64)
        ulen = np.concatenate(len_l) if len_l else np.zeros(0, np.int64)
        par = np.concatenate(par_l) if par_l else np.zeros(0, np.int64)
        alpha = np.concatenate(alpha_l) if alpha_l else np.zeros(0, bool)
        wc = np.bincount(par, minlength=n).astype(np.float64)
        unit_chars = np.bincount(par, weights=ulen, minlength=n)
        out["word_count"] = wc
        out["mean_word_length"] = _div(unit_chars, wc)
        out["alpha_words_frac"] = _div(np.bincount(par, weights=alpha, minlength=n), wc)
        out["stop_words"] = stop_count
        if "words" in g:
            bc = _byte_counts(texts, n)
            out["symbol_ratio"] = _div(np.maximum(bc["#"], bc["..."] + bc["…"]), wc)
            out["curly_brace_ratio"] = _div(bc["{"] + bc["}"], wc)
        if "ngrams" in g:
            _ngram_stats(ids, ulen, par, n, unit_chars, out)
    if "text" in g:
        # RE2-backed case-insensitive match: several times faster than counting on the lowered text
        hit = _np(pc.match_substring(texts, "lorem ipsum", ignore_case=True), bool)
        out["lorem_ipsum"] = np.zeros(n)
        if hit.any():
            idx = np.flatnonzero(hit)
            out["lorem_ipsum"][idx] = _np(pc.count_substring(lower.take(pa.array(idx)), "lorem ipsum"), np.float64)

    if "lines" in g:
        ll = pc.split_pattern(texts, "\n")
        lines = pc.utf8_trim_whitespace(pc.list_flatten(ll))
        lpar = _np(pc.list_parent_indices(ll), np.int64)
        llen = _np(pc.utf8_length(lines), np.int64)
        ne = llen > 0
        lines = lines.filter(pa.array(ne))
        lpar, llen = lpar[ne], llen[ne]
        nl = np.bincount(lpar, minlength=n).astype(np.float64)
        if len(lines):
            bullet = _np(pc.match_substring_regex(lines, BULLET_RE), bool)
            ell = _np(pc.or_(pc.ends_with(lines, "..."), pc.ends_with(lines, "…")), bool)
            js = _np(pc.match_substring(lines, "javascript", ignore_case=True), bool)
            short_lim = np.array([p.short_line_chars for p in profiles], dtype=np.int64)[lang_idx[lpar]]
            short = llen <= short_lim
            last = pc.utf8_slice_codeunits(lines, -1)
            term = np.zeros(len(lines), dtype=bool)
            line_lang = lang_idx[lpar]
            by_punct: dict[str, list[int]] = {}
            for p in np.unique(line_lang):
                if profiles[p].punctuation:
                    by_punct.setdefault(profiles[p].punctuation, []).append(int(p))
            for punct, ps in by_punct.items():
                m = np.isin(line_lang, ps)
                hit = _np(pc.is_in(last, value_set=pa.array(list(punct), last.type)), bool)
                term[m] = hit[m]
        else:
            bullet = ell = js = short = term = np.zeros(0, dtype=bool)
        out["bullet_lines_frac"] = _div(np.bincount(lpar, weights=bullet, minlength=n), nl)
        out["ellipsis_lines_frac"] = _div(np.bincount(lpar, weights=ell, minlength=n), nl)
        out["javascript_lines_frac"] = _div(np.bincount(lpar, weights=js, minlength=n), nl)
        out["short_lines_frac"] = _div(np.bincount(lpar, weights=short, minlength=n), nl)
        punct_p = np.array([p.punctuation is not None for p in profiles], dtype=bool)
        tp = _div(np.bincount(lpar, weights=term, minlength=n), nl)
        tp[~punct_p[lang_idx]] = np.nan
        out["terminal_punct_frac"] = tp
        dl, dc = _dups(lines, lpar, llen.astype(np.float64), n)
        out["dup_line_frac"] = _div(dl, nl)
        out["dup_line_char_frac"] = _div(dc, nchars)
    if "paras" in g:
        pl = pc.split_pattern_regex(texts, PARA_SEP)
        paras = pc.utf8_trim_whitespace(pc.list_flatten(pl))
        ppar = _np(pc.list_parent_indices(pl), np.int64)
        plen = _np(pc.utf8_length(paras), np.int64)
        ne = plen > 0
        paras = paras.filter(pa.array(ne))
        ppar, plen = ppar[ne], plen[ne]
        npar = np.bincount(ppar, minlength=n).astype(np.float64)
        dp, dc = _dups(paras, ppar, plen.astype(np.float64), n)
        out["dup_para_frac"] = _div(dp, npar)
        out["dup_para_char_frac"] = _div(dc, nchars)
    return out


# -- the stage ---------------------------------------------------------------------------------
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

    def setup(self) -> None:
        self.rules = QualityRules(self.params.config, self.params.registry)
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
