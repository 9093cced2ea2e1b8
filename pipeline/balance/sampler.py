"""Realise one language's target token count as per-document copy counts, from a seed.

Each document d has tokens t_d and a weight w_d (1, or its rehydration weight). We look for
the scale s with Σ min(K, s·w_d)·t_d = target (K = ceil(max_epochs), the most copies any
document may get): document d then deserves x_d = min(K, s·w_d) copies. It gets floor(x_d)
for sure, and the remaining tokens are filled by drawing documents without replacement with
probability ∝ the fractional part (Efraimidis–Spirakis keys u^(1/frac), u from the seed),
stopping at the document that brings the total closest to the target. So:

- down-sampling (target < tokens): a seeded random subset of documents, once each;
- up-sampling: every document k times plus a random subset once more, never more than K;
- the realised token count is within one document of the target.

Same seed and inputs -> the same copies; a different seed -> a different subset of the same
size distribution. Pure numpy over arrays, no Python loop per document.
"""

from __future__ import annotations

import math
import zlib

import numpy as np


def _scale_for(target: float, tokens: np.ndarray, weights: np.ndarray, k: int) -> float:
    """Smallest s with Σ min(k, s·w)·t >= target (bisection; monotone in s)."""
    lo, hi = 0.0, k / weights.min()
    for _ in range(100):
        mid = (lo + hi) / 2
        if (np.minimum(k, mid * weights) * tokens).sum() >= target:
            hi = mid
        else:
            lo = mid
    return hi


def assign_copies(tokens: np.ndarray, target: int, max_epochs: float, seed: int, lang: str,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Copies per document (int32) whose token sum is as close to `target` as one document allows."""
    n = len(tokens)
    copies = np.zeros(n, dtype=np.int32)
    if n == 0 or target <= 0:
        return copies
    tokens = np.asarray(tokens, dtype=np.float64)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if (w <= 0).any():
        raise ValueError("document weights must be positive")
    k = max(1, math.ceil(max_epochs - 1e-9))
    total = tokens.sum()
    if target >= k * total:
        return np.full(n, k, dtype=np.int32)
    x = np.minimum(k, _scale_for(target, tokens, w, k) * w)
    base = np.floor(x + 1e-12)
    frac = np.clip(x - base, 0.0, 1.0)
    copies[:] = base.astype(np.int32)
    remaining = target - (base * tokens).sum()
    if remaining <= 0:
        return copies
    rng = np.random.default_rng([seed, zlib.crc32(lang.encode())])
    u = rng.random(n)
    cand = np.flatnonzero(frac > 0)
    if cand.size == 0:
        return copies
    with np.errstate(divide="ignore"):
        keys = np.log(u[cand]) / frac[cand]  # log of u^(1/frac): larger = drawn earlier
    order = cand[np.argsort(-keys, kind="stable")]
    cum = np.cumsum(tokens[order])
    # first position where the cumulative sum reaches the remainder; take it if that is closer
    j = int(np.searchsorted(cum, remaining))
    if j >= len(order):
        take = len(order)
    else:
        before = cum[j - 1] if j > 0 else 0.0
        take = j + 1 if (cum[j] - remaining) <= (remaining - before) else j
    copies[order[:take]] += 1
    return copies
