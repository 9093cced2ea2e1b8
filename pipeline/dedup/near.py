"""Near-duplicate detection with MinHash LSH as shuffles.

1. band keys: each signature is cut into `bands` bands of `rows` values; each band is hashed
   to a uint64 bucket key; (part, key, ref) rows are routed to partitions by key;
2. buckets -> candidate edges: within a partition, every member of a bucket is linked to the
   bucket's smallest ref (a star, not all pairs: the edge list stays linear in bucket size);
3. verification: an edge is kept if the two signatures agree on at least `threshold` of their
   values (estimated Jaccard) and, with `verify: alignment` (the default), if the two
   documents' word (character) sequences align (`aligned_similarity` >= `align_threshold`),
   which removes LSH false positives such as pages that share only their site boilerplate;
4. connected components of the verified edges (vectorised min-label propagation with pointer
   jumping); the smallest ref of a component is kept, the others are dropped as `dup_near`.

Steps 1-2 run through the engine's shuffle; 3-4 run on the driver over the candidate edges
and the signatures of documents that have one. Their memory is bounded by the number of
documents with a near-duplicate candidate (16 B per edge + 4 B x num_perm per such document),
not by the corpus size — measured in bench/dedup_speed.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from babelmill.pipeline.dedup.hashing import splitmix64
from babelmill.pipeline.dedup.minhash import EMPTY

EDGES_SCHEMA = pa.schema([("a", pa.int64()), ("b", pa.int64())])


def band_rows(sigs: np.ndarray, refs: np.ndarray, bands: int, rows: int, num_parts: int) -> pa.Table:
    """(part, key, ref) for every band of every signature (documents with no shingles skipped)."""
    ok = ~(sigs == EMPTY).all(axis=1)
    sigs, refs = sigs[ok], refs[ok]
    n = len(refs)
    keys = np.empty((n, bands), np.uint64)
    with np.errstate(over="ignore"):
        for b in range(bands):
            acc = np.full(n, np.uint64(b + 1) * np.uint64(0x9E3779B97F4A7C15), np.uint64)
            for r in range(rows):
                acc = splitmix64(acc ^ sigs[:, b * rows + r].astype(np.uint64))
            keys[:, b] = acc
    flat = keys.reshape(-1)
    return pa.table({
        "part": pa.array((flat % np.uint64(num_parts)).astype(np.int32)),
        "key": pa.array(flat, pa.uint64()),
        "ref": pa.array(np.repeat(refs, bands), pa.int64()),
    })


def bucket_edges(table: pa.Table) -> pa.Table:
    """Star edges (member, smallest member) of every bucket with at least two documents."""
    if table.num_rows == 0:
        return EDGES_SCHEMA.empty_table()
    key = table.column("key").to_numpy()
    ref = table.column("ref").to_numpy()
    order = np.lexsort((ref, key))
    key, ref = key[order], ref[order]
    start = np.ones(len(key), bool)
    start[1:] = key[1:] != key[:-1]
    first = np.maximum.accumulate(np.where(start, np.arange(len(key)), 0))
    member = ~start
    a, b = ref[member], ref[first[member]]
    keep = a != b
    if not keep.any():
        return EDGES_SCHEMA.empty_table()
    e = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    return pa.table({"a": pa.array(e[:, 0]), "b": pa.array(e[:, 1])}, schema=EDGES_SCHEMA)


def connected_components(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, label) with label = smallest node of each node's component."""
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    u, v = inv[: len(a)], inv[len(a) :]
    label = np.arange(len(nodes))
    while True:
        m = np.minimum(label[u], label[v])
        new = label.copy()
        np.minimum.at(new, u, m)
        np.minimum.at(new, v, m)
        while True:  # pointer jumping
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, label):
            return nodes, nodes[label]
        label = new


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    return (sig_a == sig_b).mean(axis=1)


def aligned_similarity(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """1 - (insertions + deletions) / (len a + len b) of each pair of unit sequences (the
    normalised Indel similarity, i.e. 2 x longest common subsequence / total length), with
    RapidFuzz's bit-parallel LCS (~16 us for two 400-word documents). Unlike shingle Jaccard it
    does not multiply scattered edits by the shingle size, and a page that shares only its
    boilerplate with another scores the share of text it really has in common."""
    from rapidfuzz.distance import Indel

    f = Indel.normalized_similarity
    # the sequences are numpy arrays (the driver keeps them compact): RapidFuzz is ~5x faster
    # on lists than on arrays, so each pair is converted just before its comparison
    return np.fromiter((f(x.tolist(), y.tolist()) if (len(x) or len(y)) else 1.0
                        for x, y in zip(a, b, strict=True)), np.float64, count=len(a))
