"""Per-document quality statistics, for a whole batch at once.

Texts are split into words, lines and paragraphs by Arrow compute kernels (one C++ pass each),
the pieces are dictionary-encoded to integers, and all per-document counts are
`numpy.bincount`s over "parent document" indices. Word n-gram repetition is computed over
rolling 64-bit hashes of word ids, again for the whole batch, chaining candidates: an n-gram can
only repeat where its (n-1)-gram prefix repeats, so each longer n only looks at the positions
that are still repeated.

Words. For space-delimited languages a word is babelmill.text's: a maximal run of letters,
combining marks, digits and `_` (`WORD_SEP` splits them; lowercased). That is Python's `\\w+`
plus combining marks: `\\w` splits Devanagari, Bengali, Tamil, ... words at every vowel sign.
For languages whose registry entry says `space_delimited: false` (zh ja th lo km my) the unit
is one character (a letter, mark or digit code point, `babelmill.unicode_scripts.category_table`; `_`
is not a unit there): word counts are character counts, n-gram checks run over character
n-grams.

Character fractions of n-grams (`top_Ngram_frac`, `dup_Ngram_frac`) are measured against the
characters of the words (spaces and punctuation excluded), as in RedPajama-v2's Gopher
signals, so that they mean the same for spaced and unspaced scripts. `top` = the most frequent
n-gram (ties: the one with most characters) times its count, 0 when no n-gram repeats; `dup` =
characters of the words covered by a second or later occurrence of a repeated n-gram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from babelmill.text import WORD_SEP, splitmix64_step
from babelmill.unicode_scripts import category_table

PARA_SEP = r"\n[ \t\r\f\v]*\n"
BULLET_RE = r"^[-•*·‣◦▪▫►▸●○■□➢➤✓✔❖]"
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
#: the parts of `compute_stats` a filter can ask for (`Filter.group`)
GROUPS = ("words", "stop", "text", "lines", "paras", "ngrams")
#: polynomial base of the rolling n-gram hashes (the 64-bit FNV prime)
_P = np.uint64(0x100000001B3)


@dataclass(frozen=True)
class LangProfile:
    """What compute_stats needs to know about a document's language."""

    code: str | None
    spaced: bool = True
    stop_words: frozenset[str] | None = None  # None: no list, the stop-word check is skipped
    punctuation: str | None = ".!?\"'”’»"  # None: no terminal punctuation, check skipped
    short_line_chars: int = 30


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


def _pieces(split: pa.Array, n: int) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """The non-empty, whitespace-trimmed pieces (lines, paragraphs) of a split of `n`
    documents: (pieces, parent document, length in characters, pieces per document)."""
    pieces = pc.utf8_trim_whitespace(pc.list_flatten(split))
    parent = _np(pc.list_parent_indices(split), np.int64)
    length = _np(pc.utf8_length(pieces), np.int64)
    ne = length > 0
    parent, length = parent[ne], length[ne]
    return pieces.filter(pa.array(ne)), parent, length, np.bincount(parent, minlength=n).astype(np.float64)


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
    h1 = splitmix64_step(ids)
    cum = np.concatenate([[0], np.cumsum(ulen)])
    cand = np.arange(total, dtype=np.int64)
    # the document is part of the hash, so equal n-grams of different documents never group
    h = h1 ^ splitmix64_step(parent.astype(np.uint64) + np.uint64(0x5851F42D4C957F2D))
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
    g = set(groups) if groups is not None else set(GROUPS)
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
        lines, lpar, llen, nl = _pieces(pc.split_pattern(texts, "\n"), n)
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
        paras, ppar, plen, npar = _pieces(pc.split_pattern_regex(texts, PARA_SEP), n)
        dp, dc = _dups(paras, ppar, plen.astype(np.float64), n)
        out["dup_para_frac"] = _div(dp, npar)
        out["dup_para_char_frac"] = _div(dc, nchars)
    return out
