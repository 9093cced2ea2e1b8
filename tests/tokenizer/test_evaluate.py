"""Fairness metrics on parallel text: definitions, registry-driven words, data errors."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer

from babelmill.tokenizer.evaluate import (
    ParallelDataError,
    count_tokens,
    evaluate,
    partial_mask,
    token_bytes,
    vocab_by_script,
)
from tests.tokenizer.conftest import PARALLEL, write_parallel


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_parity_and_rates_follow_their_definitions(trained, tok_data, kind):
    path = trained[kind] / "tokenizer.json"
    res = evaluate(path, tok_data["parallel"])
    langs = res["languages"]
    assert set(langs) == set(PARALLEL)
    en_tokens = sum(count_tokens(PARALLEL["en"], path))
    for lang, r in langs.items():
        tokens = sum(count_tokens(PARALLEL[lang], path))
        assert r["tokens"] == tokens
        assert r["parity"] == pytest.approx(tokens / en_tokens)
        assert r["tokens_per_char"] == pytest.approx(tokens / sum(map(len, PARALLEL[lang])))
        assert 0.0 <= r["bytes_fallback_rate"] <= 1.0
        assert r["roundtrip_errors"] == 0
    assert langs["en"]["parity"] == 1.0
    # words only where the registry says the language is space-delimited
    for lang in ("th", "zh", "ja"):
        assert langs[lang]["tokens_per_word"] is None and langs[lang]["words"] is None
    assert langs["de"]["tokens_per_word"] == pytest.approx(
        langs["de"]["tokens"] / sum(len(s.split()) for s in PARALLEL["de"]))
    s = res["summary"]
    non_ref = [r["parity"] for lang, r in langs.items() if lang != "en"]
    assert s["worst_parity"] == max(non_ref) and langs[s["worst_language"]]["parity"] == max(non_ref)
    assert s["languages"] == len(PARALLEL) - 1
    assert sum(res["vocab_by_script"].values()) == pytest.approx(1.0)


def test_fallback_rate_counts_partial_character_tokens(tok_data, tmp_path):
    """A byte-level BPE with (almost) no merges spells Thai out byte by byte: every byte of a
    Thai character is a partial-character token, the ASCII spaces between phrases are not."""
    from babelmill.tokenizer.train_bpe import train_bpe

    tok = train_bpe([["aaaa bbbb"]], vocab_size=260, specials=["<pad>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    res = evaluate(tmp_path / "tokenizer.json", tok_data["parallel"])
    assert res["languages"]["en"]["bytes_fallback_rate"] == 0.0
    th_bytes = "".join(PARALLEL["th"]).encode()
    assert res["languages"]["th"]["bytes_fallback_rate"] == pytest.approx(
        sum(b >= 0x80 for b in th_bytes) / len(th_bytes))
    assert res["languages"]["th"]["bytes_fallback_rate"] > 0.99
    assert 0 < res["languages"]["fr"]["bytes_fallback_rate"] < 0.2  # é, à ... only
    mask = partial_mask(tok)
    assert mask.sum() == 128  # bytes 0x80-0xFF
    assert vocab_by_script(tok)["bytes"] == pytest.approx(128 / (tok.get_vocab_size() - 1))


def test_token_bytes_of_sentencepiece_vocab(trained):
    tok = Tokenizer.from_file(str(trained["unigram"] / "tokenizer.json"))
    tb = token_bytes(tok)
    vocab = tok.get_vocab()
    assert tb[vocab["<s>"]] is None
    assert tb[vocab["<0xE0>"]] == b"\xe0"
    spaced = [p for p in vocab if p.startswith("▁") and len(p) > 1 and not p.startswith("<")]
    assert tb[vocab[spaced[0]]] == spaced[0].replace("▁", " ").encode()


def test_misaligned_parallel_file_names_both_files(trained, tmp_path):
    par = write_parallel(tmp_path / "par", ["en", "fr", "th"])
    (par / "th.txt").write_text(PARALLEL["th"][0] + "\n", encoding="utf-8")
    with pytest.raises(ParallelDataError) as e:
        evaluate(trained["bpe"] / "tokenizer.json", par)
    msg = str(e.value)
    assert "th.txt has 1 lines" in msg and "en.txt has 3" in msg


def test_missing_reference_and_empty_lines_are_errors(trained, tmp_path):
    par = write_parallel(tmp_path / "noref", ["fr"])
    with pytest.raises(ParallelDataError, match="en.txt"):
        evaluate(trained["bpe"] / "tokenizer.json", par)
    par = write_parallel(tmp_path / "empty", ["en", "fr"])
    (par / "fr.txt").write_text("a\n\nb\n", encoding="utf-8")
    with pytest.raises(ParallelDataError, match=r"fr.txt: empty line"):
        evaluate(trained["bpe"] / "tokenizer.json", par)
    with pytest.raises(FileNotFoundError, match="nope"):
        evaluate(tmp_path / "nope" / "tokenizer.json", par)


def test_count_tokens_matches_single_encodes(trained):
    path = trained["bpe"] / "tokenizer.json"
    texts = [s for lines in PARALLEL.values() for s in lines]
    tok = Tokenizer.from_file(str(path))
    assert count_tokens(texts, path, batch_size=5) == [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    assert count_tokens([], path) == []
