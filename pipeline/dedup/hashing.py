"""Document and shingle hashing, vectorised.

Exact dedup hashes a normalised text (NFKC, lower case, whitespace and punctuation folded)
with xxh3-128. Near dedup hashes shingles: word n-grams for space-delimited scripts,
character n-grams for unspaced ones (zh, ja, th, lo, km, my: the registry decides). Token
hashes are combined into n-gram hashes with a polynomial over uint64 in numpy, so there is
no per-shingle Python loop; tokens are hashed once each (cached per worker).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

_FOLD = r"[\s\p{P}\p{S}]+"
_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)


def normalized_texts(texts: pa.Array) -> pa.Array:
    """NFKC, lower case, runs of whitespace/punctuation/symbols -> one space (Arrow kernels)."""
    t = pc.utf8_normalize(texts, "NFKC")
    t = pc.utf8_lower(t)
    t = pc.replace_substring_regex(t, _FOLD, " ")
    return pc.utf8_trim_whitespace(t)


def exact_hashes(texts: pa.Array) -> pa.Array:
    """128-bit xxh3 of each normalised text, as 16-byte binary."""
    norm = normalized_texts(texts).to_pylist()
    return pa.array([xxhash.xxh3_128_digest(t.encode("utf-8")) for t in norm], pa.binary(16))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """A good 64-bit mixer (vectorised); numpy uint64 arithmetic wraps as intended."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX2
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def ngram_hashes(units: np.ndarray, n: int) -> np.ndarray:
    """Hashes of all n-grams of a sequence of uint64 unit hashes (one document).

    A sequence shorter than n yields one shingle (the whole sequence), so short documents
    still get a signature."""
    m = len(units)
    if m == 0:
        return np.zeros(0, np.uint64)
    k = min(n, m)
    with np.errstate(over="ignore"):
        acc = np.zeros(m - k + 1, np.uint64)
        for j in range(k):  # k is the n-gram order (e.g. 5), not the number of shingles
            acc = acc * _MIX + units[j : m - k + 1 + j]
    return splitmix64(acc)


class _HashCache(dict):
    def __missing__(self, token: str) -> int:
        h = self[token] = xxhash.xxh64_intdigest(token.encode("utf-8"))
        return h


class TokenHasher:
    """xxh64 of tokens, memoised: in natural text most tokens repeat, so each distinct token
    is hashed once per worker; hits are a C-level dict lookup driven by np.fromiter(map(...))."""

    def __init__(self, max_size: int = 2_000_000):
        self.cache = _HashCache()
        self.max_size = max_size

    def __call__(self, tokens: list[str]) -> np.ndarray:
        if len(self.cache) > self.max_size:
            self.cache.clear()
        return np.fromiter(map(self.cache.__getitem__, tokens), dtype=np.uint64, count=len(tokens))


def shingle_hashes(text: str, spaced: bool, n: int, hasher: TokenHasher) -> np.ndarray:
    """Shingle hashes of one document (word n-grams if `spaced`, else character n-grams);
    the same code path as `batch_shingles`, so single documents and batches always agree."""
    flat, _ = batch_shingles(pa.array([text], pa.large_string()), np.array([spaced]), n, n, hasher)
    return flat


_NONWORD = r"[^\p{L}\p{N}\p{M}_]+"


def batch_shingles(texts: pa.Array, spaced: np.ndarray, word_n: int, char_n: int,
                   hasher: TokenHasher) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a whole batch as (flat uint64 array, per-document counts).

    Tokenising, lower-casing and de-duplicating tokens run as Arrow kernels over the batch;
    only distinct tokens reach Python (to be hashed once, memoised); n-gram hashes are built
    with numpy over the flat token array, with n-grams that would cross a document boundary
    masked out. Documents shorter than n get one shingle (their whole sequence)."""
    n_docs = len(texts)
    lowered = pc.utf8_lower(texts)
    unit_hashes = np.zeros(0, np.uint64)
    unit_doc = np.zeros(0, np.int64)
    parts_h: list[np.ndarray] = []
    parts_d: list[np.ndarray] = []
    sp_idx = np.flatnonzero(spaced)
    if len(sp_idx):
        lists = pc.split_pattern_regex(lowered.take(pa.array(sp_idx)), _NONWORD)
        flat = lists.flatten()
        counts = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
        doc = np.repeat(sp_idx, counts)
        keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
        flat = flat.filter(pa.array(keep))
        doc = doc[keep]
        enc = pc.dictionary_encode(flat).combine_chunks() if isinstance(flat, pa.ChunkedArray) else pc.dictionary_encode(flat)
        uniq_h = hasher(enc.dictionary.to_pylist())
        parts_h.append(uniq_h[enc.indices.to_numpy(zero_copy_only=False)])
        parts_d.append(doc)
    un_idx = np.flatnonzero(~spaced)
    if len(un_idx):
        stripped = pc.replace_substring_regex(lowered.take(pa.array(un_idx)), _NONWORD, "").to_pylist()
        lens = np.fromiter(map(len, stripped), np.int64, count=len(stripped))
        cps = np.frombuffer("".join(stripped).encode("utf-32-le"), np.uint32).astype(np.uint64)
        parts_h.append(splitmix64(cps))
        parts_d.append(np.repeat(un_idx, lens))
    units_per_doc = np.bincount(np.concatenate(parts_d), minlength=n_docs) if parts_d else np.zeros(n_docs, np.int64)
    starts = np.concatenate([[0], np.cumsum(units_per_doc)[:-1]]).astype(np.int64)
    if len(parts_h) == 1:  # one script family: already in document order
        unit_hashes, unit_doc = parts_h[0], parts_d[0]
    elif parts_h:  # interleave the two families back into document order without sorting
        total = int(units_per_doc.sum())
        unit_hashes = np.empty(total, np.uint64)
        unit_doc = np.empty(total, np.int64)
        for h_part, d_part in zip(parts_h, parts_d, strict=True):
            first = np.maximum.accumulate(np.where(np.r_[True, d_part[1:] != d_part[:-1]], np.arange(len(d_part)), 0))
            dest = starts[d_part] + (np.arange(len(d_part)) - first)
            unit_hashes[dest] = h_part
            unit_doc[dest] = d_part
    nvec = np.where(spaced, word_n, char_n).astype(np.int64)
    k = np.minimum(nvec, units_per_doc)  # effective n per document
    pos = np.arange(len(unit_hashes)) - np.repeat(starts, units_per_doc)  # position within its document
    kk = np.repeat(k, units_per_doc)
    valid = pos <= np.repeat(units_per_doc, units_per_doc) - kk  # an n-gram starts here
    m = len(unit_hashes)
    with np.errstate(over="ignore"):
        if word_n == char_n and m:  # one n for all: plain shifted slices (short documents fixed below)
            n = word_n
            acc = np.zeros(m, np.uint64)
            for j in range(min(n, m)):
                acc[: m - j] = acc[: m - j] * _MIX + unit_hashes[j:]
            short = np.flatnonzero((units_per_doc > 0) & (units_per_doc < n))
            for d in short:  # a document shorter than n: one shingle over all its units
                a = np.uint64(0)
                for u in unit_hashes[starts[d] : starts[d] + units_per_doc[d]]:
                    a = a * _MIX + u
                acc[starts[d]] = a
        else:
            acc = np.zeros(m, np.uint64)
            for j in range(int(nvec.max()) if n_docs else 0):
                idx = np.minimum(np.arange(m) + j, m - 1)
                acc = np.where(j < kk, acc * _MIX + unit_hashes[idx], acc)
    sh = splitmix64(acc[valid])
    counts = np.bincount(unit_doc[valid], minlength=n_docs) if len(unit_doc) else np.zeros(n_docs, np.int64)
    return sh, counts
