"""The near-dedup rounds' building blocks against definitions written here: the alignment
against a textbook LCS, bucket edges against a brute-force grouping, and the screen round's
promise that only the pairs passing the signature check cost any text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from babelmill.pipeline.dedup import near
from testing.lcs import lcs_length


def _indel(x: list[int], y: list[int]) -> float:
    return 1.0 if not x and not y else 2 * lcs_length(x, y) / (len(x) + len(y))


def _pairs(seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    vocab = rng.integers(0, 2**32, 40, dtype=np.uint64).astype(np.uint32)  # values shared across pairs
    a, b = [], []
    for i in range(n):
        x = rng.choice(vocab, rng.integers(0, 30))
        y = x.copy()
        if len(y):
            y[rng.integers(0, len(y), max(1, len(y) // 8))] = rng.choice(vocab)
        if i % 7 == 0:
            y = rng.choice(vocab, rng.integers(0, 30))  # unrelated
        a.append(x.tolist())
        b.append(y.tolist())
    a[1], b[1] = [], []  # both empty: identical
    a[2], b[2] = [5, 6], []
    return a, b


@pytest.mark.parametrize("chunk", [1, 7, 1 << 22])
def test_aligned_similarity_is_the_indel_similarity_of_the_units(monkeypatch, chunk):
    monkeypatch.setattr(near, "ALIGN_CHUNK_UNITS", chunk)
    a, b = _pairs()
    A, B = pa.array(a, pa.large_list(pa.uint32())), pa.array(b, pa.large_list(pa.uint32()))
    want = np.array([_indel(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(near.aligned_similarity(A, B), want, rtol=0, atol=1e-12)
    # a slice of the arrays (offsets not starting at 0)
    np.testing.assert_allclose(near.aligned_similarity(A.slice(5, 30), B.slice(5, 30)), want[5:35], atol=1e-12)
    # below the cutoff: 0; at or above: the same value
    got = near.aligned_similarity(A, B, cutoff=0.8)
    np.testing.assert_allclose(got, np.where(want >= 0.8, want, 0.0), atol=1e-12)


@pytest.mark.parametrize("chunk, split", [(1 << 22, False), (9, False), (1 << 22, True)])
def test_alignment_converts_a_document_in_several_pairs_once_with_the_same_result(monkeypatch, chunk, split):
    monkeypatch.setattr(near, "ALIGN_CHUNK_UNITS", chunk)
    docs, _ = _pairs(seed=5, n=12)
    rng = np.random.default_rng(6)
    ka, kb = rng.integers(0, 12, 40), rng.integers(0, 12, 40)  # documents reused across pairs
    a, b = [docs[k] for k in ka], [docs[k] for k in kb]
    if split:  # room for the most distinct units of one pair, not for all of them
        most = max(len(set(x) | set(y)) for x, y in zip(a, b, strict=True))
        assert most < len({u for x in a + b for u in x})
        monkeypatch.setattr(near, "_CODE_POINTS", most)
    A, B = pa.array(a, pa.large_list(pa.uint32())), pa.array(b, pa.large_list(pa.uint32()))
    want = np.array([_indel(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(near.aligned_similarity(A, B, keys=(ka, kb + 100)), want, atol=1e-12)
    np.testing.assert_allclose(near.aligned_similarity(A, B, keys=(ka, kb)), want, atol=1e-12)  # same keys, same docs


def test_alignment_splits_pairs_whose_units_outnumber_the_code_points(monkeypatch):
    monkeypatch.setattr(near, "_CODE_POINTS", 25)  # fewer than the 40 distinct values in use
    a, b = _pairs(seed=3)
    A, B = pa.array(a, pa.large_list(pa.uint32())), pa.array(b, pa.large_list(pa.uint32()))
    want = np.array([_indel(x, y) for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(near.aligned_similarity(A, B), want, atol=1e-12)


def test_bucket_edges_link_every_member_of_a_bucket_to_one_representative():
    rng = np.random.default_rng(1)
    key = rng.integers(0, 300, 2000).astype(np.uint64)
    ref = rng.permutation(5000)[:2000].astype(np.int64)  # a document once per band key
    table = pa.table({"key": pa.array(key, pa.uint64()), "ref": pa.array(ref)})
    got = near.bucket_edges(table)
    pairs = list(zip(got.column("a").to_pylist(), got.column("b").to_pylist(), strict=True))
    assert pairs == sorted(set(pairs))  # unique and ordered
    by_rep: dict[int, set[int]] = {}
    for a, b in pairs:
        by_rep.setdefault(b, set()).add(a)
    smallest = 0
    buckets = [set(ref[key == k].tolist()) for k in np.unique(key)]
    multi = [m for m in buckets if len(m) > 1]
    for members in multi:  # one representative, a member, linked to every other member
        reps = [r for r in members if r in by_rep and by_rep[r] == members - {r}]
        assert len(reps) == 1, members
        smallest += reps[0] == min(members)
    assert len(by_rep) == len(multi)
    # not the smallest ref (which would make the first documents of a corpus its hubs)
    assert smallest < 0.5 * len(multi)
    # the same edges whatever the order of the rows
    shuffled = table.take(pa.array(rng.permutation(table.num_rows)))
    assert near.bucket_edges(shuffled).equals(got)
    assert near.bucket_edges(pa.table({"key": pa.array([1, 2], pa.uint64()), "ref": pa.array([1, 2])})).num_rows == 0


def test_screen_reads_text_data_only_for_pairs_that_pass_the_signatures():
    rng = np.random.default_rng(2)
    width = 16
    sigs = rng.integers(0, 2**32, (6, width), dtype=np.uint64).astype(np.uint32)
    sigs[1] = sigs[0]  # 0-1: identical signatures
    sigs[3, : width // 4] = sigs[2, : width // 4]  # 2-3: a quarter agrees
    asked = []

    def docs(unit, rows, fields):
        asked.append((unit, tuple(rows.tolist()), fields))
        d = near.DocData()
        if "sig" in fields:
            d.sig = sigs[rows]
        if "chars" in fields:
            d.chars = np.zeros(len(rows), bool)
        if "ids" in fields:
            d.ids = pa.array([f"d{r}" for r in rows])
        if "units" in fields:
            d.units = pa.array([[7, 8, 9] if r < 2 else [int(r)] * 3 for r in rows], pa.large_list(pa.uint32()))
        return d

    pairs = pa.table({"rep": pa.array([1, 2, 4]), "mem": pa.array([0, 3, 5])})
    attached = near.attach_rep(pairs, docs)
    out, stats = near.screen_pairs(attached, docs, 0.5, 0.5)
    assert out.column("rep").to_pylist() == [1] and out.column("mem").to_pylist() == [0]
    assert stats == {"candidates": 3, "screened": 1}
    text_reads = [(rows, f) for _, rows, f in asked if "units" in f or "ids" in f]
    assert text_reads == [((0,), near.MATCH_FIELDS)]  # mem of the one survivor, nothing else
    verified, vstats = near.verify_pairs(out, docs, 0.9)
    # as an edge lo < hi, whichever side was the representative
    assert verified.to_pylist() == [{"lo": 0, "hi": 1, "sim": 1.0, "lo_id": "d0", "hi_id": "d1"}]
    assert vstats == {"verified": 1}
