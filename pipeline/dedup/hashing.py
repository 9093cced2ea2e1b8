"""Document and shingle hashing, vectorised.

Exact dedup hashes a normalised text (NFKC, lower case, whitespace and punctuation folded:
babelmill.text.normalize_for_dedup) with xxh3-128. Near dedup hashes shingles: word n-grams for space-delimited scripts,
character n-grams for unspaced ones (zh, ja, th, lo, km, my: the registry decides), in one
compiled pass over the batch's code points (no per-shingle Python loop). Words and characters
are babelmill.text's (`word_char_table`), the mixer its `mix64`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from numba import njit

from babelmill.text import mix64, normalize_for_dedup, word_char_table


def exact_hashes(texts: pa.Array) -> pa.Array:
    """128-bit xxh3 of each normalised text (babelmill.text.normalize_for_dedup), as 16-byte binary."""
    norm = normalize_for_dedup(texts).to_pylist()
    return pa.array([xxhash.xxh3_128_digest(t.encode("utf-8")) for t in norm], pa.binary(16))


# babelmill.text.mix64 compiled for the kernel below (the same function as babelmill.text.splitmix64)
_smix = njit(inline="always")(mix64)


@lru_cache(maxsize=1)
def lower_table() -> np.ndarray:
    """code point -> its lower-case code point (1:1 mappings; the rare 1:n ones stay as they are)."""
    t = np.arange(0x110000, dtype=np.uint32)
    for i in range(0x20000):
        low = chr(i).lower()
        if len(low) == 1 and low != chr(i):
            t[i] = ord(low)
    return t


@njit(cache=True)
def _shingle_kernel(data, offs, spaced, nvec, word, lower, max_units):  # pragma: no cover - compiled
    """One pass over a batch's UTF-8 bytes: decode, lower-case, split into units (words:
    polynomial hash of their code points; or single characters), then n-gram hashes over
    each document's units; with max_units > 0 also the first max_units unit hashes of each
    document (uint32, in order), for alignment."""
    n_docs = len(offs) - 1
    out = np.empty(len(data) + n_docs, np.uint64)
    counts = np.zeros(n_docs, np.int64)
    units = np.empty(len(data) + 1, np.uint64)
    uout = np.empty(len(data) + 1 if max_units > 0 else 0, np.uint32)
    ucounts = np.zeros(n_docs, np.int64)
    uo = 0
    P = np.uint64(0x100000001B3)
    MIX = np.uint64(0x9E3779B97F4A7C15)
    o = 0
    for d in range(n_docs):
        m = 0
        i = offs[d]
        end = offs[d + 1]
        sp = spaced[d]
        h = np.uint64(0)
        inword = False
        while i < end:
            b0 = np.uint32(data[i])
            if b0 < 0x80:
                c = b0
                i += 1
            elif b0 < 0xE0:
                c = ((b0 & 0x1F) << 6) | (np.uint32(data[i + 1]) & 0x3F)
                i += 2
            elif b0 < 0xF0:
                c = ((b0 & 0x0F) << 12) | ((np.uint32(data[i + 1]) & 0x3F) << 6) | (np.uint32(data[i + 2]) & 0x3F)
                i += 3
            else:
                c = (((b0 & 0x07) << 18) | ((np.uint32(data[i + 1]) & 0x3F) << 12)
                     | ((np.uint32(data[i + 2]) & 0x3F) << 6) | (np.uint32(data[i + 3]) & 0x3F))
                i += 4
            c = lower[c]
            if sp:
                if word[c]:
                    h = h * P + np.uint64(c) + np.uint64(1)
                    inword = True
                elif inword:
                    units[m] = _smix(h)
                    m += 1
                    h = np.uint64(0)
                    inword = False
            elif word[c]:
                units[m] = _smix(np.uint64(c))
                m += 1
        if inword:
            units[m] = _smix(h)
            m += 1
        if max_units > 0:
            mu = min(m, max_units)
            for j in range(mu):
                uout[uo + j] = np.uint32(units[j] & np.uint64(0xFFFFFFFF))
            uo += mu
            ucounts[d] = mu
        if m == 0:
            continue
        k = min(nvec[d], m)  # a document shorter than n: one shingle over all its units
        for s in range(m - k + 1):
            acc = np.uint64(0)
            for j in range(k):
                acc = acc * MIX + units[s + j]
            out[o] = _smix(acc)
            o += 1
        counts[d] = m - k + 1
    return out[:o], counts, uout[:uo], ucounts


def shingle_hashes(text: str, spaced: bool, n: int) -> np.ndarray:
    """Shingle hashes of one document (word n-grams if `spaced`, else character n-grams);
    the same code path as `batch_shingles`, so single documents and batches always agree."""
    flat, _ = batch_shingles(pa.array([text], pa.large_string()), np.array([spaced]), n, n)
    return flat


def batch_shingles(texts: pa.Array, spaced: np.ndarray, word_n: int, char_n: int) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of a whole batch as (flat uint64 array, per-document counts).

    A numba-compiled kernel walks the Arrow array's UTF-8 buffer once (decode, lower-case by
    table, split, hash). Why compiled: the vectorised version (Arrow regex split + dictionary-
    encoded token hashing + numpy n-grams) spent 72% of the signature stage in shingling, a
    pure-numpy code point version was no faster, and this kernel is ~4x faster on the dedup
    benchmark corpus (bench/dedup_speed.py)."""
    flat, counts, _ = batch_shingles_and_units(texts, spaced, word_n, char_n, 0)
    return flat, counts


def batch_shingles_and_units(texts: pa.Array, spaced: np.ndarray, word_n: int, char_n: int,
                             max_units: int) -> tuple[np.ndarray, np.ndarray, pa.Array | None]:
    """`batch_shingles` plus, with max_units > 0, each document as the sequence of its first
    `max_units` units (words, or characters for unspaced scripts) hashed to uint32 in text
    order, repeats included: what near dedup aligns to verify a candidate pair. One pass."""
    arr = pc.fill_null(texts, "")
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    arr = arr.cast(pa.large_string())
    n = len(arr)
    bufs = arr.buffers()
    offs = np.frombuffer(bufs[1], np.int64, count=n + 1, offset=arr.offset * 8) if n else np.zeros(1, np.int64)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    nvec = np.where(spaced, word_n, char_n).astype(np.int64)
    flat, counts, uflat, ucounts = _shingle_kernel(data, offs, np.asarray(spaced, np.bool_), nvec, word_char_table(),
                                                   lower_table(), max_units)
    if max_units <= 0:
        return flat, counts, None
    offsets = np.concatenate([[0], np.cumsum(ucounts)]).astype(np.int64)
    return flat, counts, pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), pa.array(uflat, pa.uint32()))
