"""Trained tokenizers: loadable by transformers, exact round-trip, metadata, resumability,
pre-tokenization of unspaced scripts, SentencePiece conversion fidelity."""

from __future__ import annotations

import json

import pytest
from transformers import PreTrainedTokenizerFast

from babelmill.tokenizer.train import train
from babelmill.tokenizer.train_bpe import build_bpe
from tests.tokenizer.conftest import EDGE_CASES, PARALLEL

ALL_TEXTS = [s for lines in PARALLEL.values() for s in lines] + EDGE_CASES


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_roundtrip_with_transformers(trained, kind):
    tok = PreTrainedTokenizerFast(tokenizer_file=str(trained[kind] / "tokenizer.json"))
    for text in ALL_TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.decode(ids) == text, (kind, text)
    # ... and through from_pretrained, which also knows the special tokens
    tok2 = PreTrainedTokenizerFast.from_pretrained(str(trained[kind]))
    assert [tok2.pad_token_id, tok2.bos_token_id, tok2.eos_token_id, tok2.unk_token_id] == [0, 1, 2, 3]
    assert tok2.decode(tok2.encode(PARALLEL["th"][0], add_special_tokens=False)) == PARALLEL["th"][0]


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_nfd_input_comes_back_as_nfc(trained, kind):
    import unicodedata

    tok = PreTrainedTokenizerFast(tokenizer_file=str(trained[kind] / "tokenizer.json"))
    nfd = unicodedata.normalize("NFD", "café naïve Ñandú")
    assert tok.decode(tok.encode(nfd, add_special_tokens=False)) == unicodedata.normalize("NFC", nfd)


def test_metadata(trained):
    meta = json.loads((trained["bpe"] / "tokenizer_meta.json").read_text())
    assert meta["kind"] == "bpe" and meta["vocab_size"] == 1000
    assert 300 < meta["actual_vocab_size"] <= 1000
    assert set(meta["sample"]) == set(PARALLEL)  # every fixture language sampled, distractor not
    assert all(v["docs"] > 0 and v["chars"] > 0 for v in meta["sample"].values())
    assert meta["skipped"]["non_target_lang"] == {"af": 3}
    assert meta["sample_plan"]["temperature"] == meta["temperature"] == 5.0
    assert len(meta["input_fingerprint"]) == 16 and meta["seed"] == 0
    assert meta["seconds"]["total"] > 0 and meta["peak_rss_mb"] > 0
    assert meta["special_tokens"][:4] == ["<pad>", "<s>", "</s>", "<unk>"]


def test_resume_reuses_matching_tokenizer_and_retrains_on_change(trained, tok_data, tmp_path):
    inputs = [str(tok_data["balanced"])]
    again = train(inputs, trained["bpe"], vocab_size=1000, kind="bpe")
    assert again.get("reused") is True
    other = train(inputs, tmp_path / "s1", vocab_size=1000, seed=1, cost_power=0)
    assert not other.get("reused")
    assert train(inputs, tmp_path / "s1", vocab_size=1000, seed=1, cost_power=0).get("reused") is True
    assert not train(inputs, tmp_path / "s1", vocab_size=1200, seed=1, cost_power=0).get("reused")


def test_training_is_deterministic(tok_data, tmp_path):
    inputs = [str(tok_data["skewed"])]
    train(inputs, tmp_path / "a", vocab_size=700, cost_power=0)
    train(inputs, tmp_path / "b", vocab_size=700, cost_power=0)
    a = json.loads((tmp_path / "a" / "tokenizer.json").read_text())["model"]
    b = json.loads((tmp_path / "b" / "tokenizer.json").read_text())["model"]
    assert a["merges"] == b["merges"]


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("คณะกรรมการได้เผยแพร่", 1),  # Thai: vowel/tone marks stay inside the run
        ("समिति प्रकाशित", 2),  # Devanagari: one pre-token per word despite the vowel signs
        ("委员会上周发布了", 1),  # Chinese: the run is left to BPE
        ("می‌خواهم", 1),  # Persian word with a ZWNJ
        ("2024", 4),  # digits one by one
    ],
)
def test_pretokenizer_keeps_unspaced_and_marked_scripts_whole(text, pieces):
    got = build_bpe().pre_tokenizer.pre_tokenize_str(text)
    assert len(got) == pieces, got


def test_converted_unigram_matches_sentencepiece(trained):
    import sentencepiece as spm

    from babelmill.tokenizer.evaluate import load

    sp = spm.SentencePieceProcessor(model_file=str(trained["unigram"] / "spm.model"))
    hf = load(trained["unigram"] / "tokenizer.json")
    texts = [s for lines in PARALLEL.values() for s in lines]
    same = sum(sp.encode(t, out_type=int) == hf.encode(t, add_special_tokens=False).ids for t in texts)
    assert same == len(texts)


def test_bad_arguments_are_rejected(tok_data, tmp_path):
    with pytest.raises(ValueError, match="kind"):
        train([str(tok_data["balanced"])], tmp_path / "x", kind="wordpiece")
    with pytest.raises(ValueError, match="too small"):
        train([str(tok_data["balanced"])], tmp_path / "x", vocab_size=100)
