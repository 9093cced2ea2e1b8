"""The pure-Python Kneser-Ney trainer writes ARPA that KenLM loads, whose every conditional
distribution sums to one, and whose scores KenLM and an independent back-off evaluation agree on."""

from __future__ import annotations

import random

import pytest

from babelmill.pipeline.quality_models.kenlm_models import load_kenlm
from babelmill.pipeline.quality_models.ngram import train_ngram
from tests.pipeline.quality_models.helpers import arpa_log10, parse_arpa

WORDS = "the cat sat on a mat and dog ran in park with ball red blue".split()


def _sentences(seed: int = 0, n: int = 300):
    rng = random.Random(seed)
    # some structure (bigram preferences) so that discounts are estimated, not the fallback
    out = []
    for _ in range(n):
        s = [rng.choice(WORDS)]
        for _ in range(rng.randint(1, 10)):
            s.append(WORDS[(WORDS.index(s[-1]) + rng.choice((1, 1, 2, 3, rng.randint(0, 14)))) % len(WORDS)])
        out.append(s)
    return out


@pytest.mark.parametrize("order", [2, 3, 4])
def test_distributions_sum_to_one_through_kenlm(tmp_path, order):
    import kenlm

    model = train_ngram(_sentences(), order)
    path = model.write_arpa(tmp_path / "m.arpa")
    lm = load_kenlm(path)
    assert lm.order == order
    vocab = [g[0] for g in model.grams[0] if g[0] != "<s>"]
    assert "<unk>" in vocab and "</s>" in vocab
    for ctx in ([], ["the"], ["the", "cat"], ["unseen"], ["ball", "red", "blue"]):
        state = kenlm.State()
        lm.BeginSentenceWrite(state)
        for w in ctx:
            nxt = kenlm.State()
            lm.BaseScore(state, w, nxt)
            state = nxt
        total = sum(10 ** lm.BaseScore(state, w, kenlm.State()) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-4), (order, ctx)


def test_kenlm_scores_equal_an_independent_backoff_evaluation(tmp_path):
    model = train_ngram(_sentences(1), 3)
    path = model.write_arpa(tmp_path / "m.arpa")
    probs, bows, order = parse_arpa(path.read_text(encoding="utf-8"))
    lm = load_kenlm(path)
    for sent in (["the", "cat", "sat"], ["blue", "unseen", "the", "mat", "and"], ["park"]):
        ctx, mine = ("<s>",), 0.0
        for w in [*sent, "</s>"]:
            mine += arpa_log10(probs, bows, order, ctx, w)
            ctx = (*ctx, w)
        assert lm.score(" ".join(sent), bos=True, eos=True) == pytest.approx(mine, abs=1e-4)


def test_modified_kneser_ney_discounts_and_fallback_are_reported():
    big = train_ngram(_sentences(2, 2000), 3)
    info = big.info()
    assert info["sentences"] == 2000 and info["n_tokens"] > 2000
    assert 3 not in big.fallback_orders  # trigram discounts estimated from count-of-counts
    d1, d2, d3 = big.discounts[2]
    assert 0 < d1 < 1 and 0 < d2 < 2 and 0 < d3 < 3 and (d1, d2, d3) != (0.5, 1.0, 1.5)
    tiny = train_ngram([["a", "b"], ["b", "a"]], 2)
    assert tiny.fallback_orders  # t1..t4 cannot all be positive on two sentences
    with pytest.raises(ValueError, match="order"):
        train_ngram([["a"]], 1)
    with pytest.raises(ValueError, match="no non-empty"):
        train_ngram([[], ["<s>"]], 3)
