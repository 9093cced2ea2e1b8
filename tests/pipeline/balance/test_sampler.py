"""The sampler realises a language's target tokens from a seed, within one document."""

from __future__ import annotations

import math

import numpy as np
import pytest

from babelmill.pipeline.balance.sampler import assign_copies


@pytest.mark.parametrize("factor", [0.01, 0.3, 1.0, 1.7, 3.2, 10.0])
def test_realised_tokens_within_one_document_and_cap(factor):
    tokens = np.random.default_rng(0).integers(20, 800, 2000)
    target = int(tokens.sum() * factor)
    c = assign_copies(tokens, target, max_epochs=3.5, seed=1, lang="xx")
    got = int((c * tokens).sum())
    assert c.max() <= math.ceil(3.5)
    if factor < 4:
        assert abs(got - target) <= tokens.max()
    else:
        assert (c == 4).all()  # target beyond the cap: everything at the cap


def test_downsampling_keeps_each_document_at_most_once():
    tokens = np.full(1000, 100)
    c = assign_copies(tokens, 30_000, max_epochs=4, seed=0, lang="en")
    assert set(np.unique(c)) == {0, 1} and c.sum() == 300


def test_same_seed_same_copies_other_seed_other_subset():
    tokens = np.random.default_rng(3).integers(10, 500, 500)
    target = int(tokens.sum() * 1.5)
    a = assign_copies(tokens, target, 4, seed=7, lang="fr")
    b = assign_copies(tokens, target, 4, seed=7, lang="fr")
    c = assign_copies(tokens, target, 4, seed=8, lang="fr")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    for x in (a, c):
        assert abs(int((x * tokens).sum()) - target) <= tokens.max()


def test_rehydration_repeats_documents_with_big_clusters_more():
    tokens = np.full(400, 50)
    weights = np.where(np.arange(400) < 100, 4.0, 1.0)  # 100 documents had 3 duplicates each
    c = assign_copies(tokens, 400 * 50, max_epochs=4, seed=0, lang="de", weights=weights)
    assert c[:100].mean() > 2 * c[100:].mean()
    assert (c * tokens).sum() == 400 * 50 and c.max() <= 4
