"""Document and shingle hashing, vectorised.

Exact dedup hashes a normalised text (NFKC, lower case, whitespace and punctuation folded)
with xxh3-128. Near dedup hashes shingles: word n-grams for space-delimited scripts,
character n-grams for unspaced ones (zh, ja, th, lo, km, my: the registry decides). Token
hashes are combined into n-gram hashes with a polynomial over uint64 in numpy, so there is
no per-shingle Python loop; tokens are hashed once each (cached per worker).
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

_FOLD = r"[\s\p{P}\p{S}]+"
_WORD = re.compile(r"\w+")
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


class TokenHasher:
    """xxh64 of tokens, memoised: in natural text most tokens repeat, so each distinct token
    is hashed once per worker."""

    def __init__(self, max_size: int = 2_000_000):
        self.cache: dict[str, int] = {}
        self.max_size = max_size

    def __call__(self, tokens: list[str]) -> np.ndarray:
        c = self.cache
        if len(c) > self.max_size:
            c.clear()
        out = np.empty(len(tokens), np.uint64)
        for i, t in enumerate(tokens):
            h = c.get(t)
            if h is None:
                h = c[t] = xxhash.xxh64_intdigest(t.encode("utf-8"))
            out[i] = h
        return out


def shingle_hashes(text: str, spaced: bool, n: int, hasher: TokenHasher) -> np.ndarray:
    """Shingle hashes of one document: word n-grams if `spaced`, else character n-grams."""
    if spaced:
        units = hasher(_WORD.findall(text.lower()))
    else:
        chars = "".join(_WORD.findall(text.lower()))  # letters/digits only: spacing and punctuation vary
        units = splitmix64(np.frombuffer(chars.encode("utf-32-le"), np.uint32).astype(np.uint64))
    return ngram_hashes(units, n)
