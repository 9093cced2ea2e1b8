"""Text preparation: CCNet's normalisation exactly, tokens per language, fastText lines."""

from __future__ import annotations

import re
import unicodedata

from babelmill.pipeline.quality_models.text import (
    UNICODE_PUNCT,
    fasttext_lines,
    lm_line,
    lm_lines,
    lm_sentences,
    normalize,
)
from tests.conftest import SENTENCES


def ccnet_normalize(line: str) -> str:
    """A transcription of cc_net/text_normalizer.py normalize(line) with its defaults
    (accent=True, case=True, numbers=True, punct=1), step by step as CCNet does it."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    nfd = unicodedata.normalize("NFD", line)
    line = "".join(c for c in nfd if unicodedata.category(c) != "Mn")
    line = re.sub(r"\d", "0", line)
    line = "".join(UNICODE_PUNCT.get(c, c) for c in line)
    non_printing = re.compile(f"[{''.join(map(chr, list(range(0, 32)) + list(range(127, 160))))}]")
    return non_printing.sub("", line)


CASES = [
    *SENTENCES.values(),
    "  Ärger über „Preise“ — 1948: Ünïcödé… ０１２３ ١٢٣ ۴۵ १२३ (（test）)  ",
    "Line one\nLine two\twith tab\r\n",
    "한국어 문장입니다. Tiếng Việt có dấu. Ελληνικά με τόνους; Русский ёж.",
    "ค่ำคืน ภาษาไทย ๑๒๓ ເລກ ໑໒ ខ្មែរ ១២ မြန်မာ ၁၂",
    "\x00\x07bell\x85 \x9f", "", "   ",
]


def test_normalize_is_ccnet_exactly():
    for text in CASES:
        assert normalize(text, "ccnet") == ccnet_normalize(text), text


def test_keep_accents_mode_keeps_marks_and_still_folds_digits_and_punctuation():
    out = normalize("Ärger „1948“ — हिन्दी", "ccnet_keep_accents")
    assert out == 'ärger "0000"  -  हिन्दी'  # CCNet maps an em dash to " - "
    assert normalize("Ärger", "none") == "Ärger"


def test_document_and_line_units():
    text = "First Line.\n\nSecond line 42.\n"
    # CCNet removes newlines with the other control characters: the lines are glued
    assert lm_lines(text, "document", "ccnet") == ["first line.second line 00."]
    assert lm_lines(text, "line", "ccnet") == ["first line.", "second line 00."]
    assert lm_lines(" \n\t", "document", "ccnet") == []


def test_tokens_words_chars_and_sentencepiece_shape():
    assert lm_line("a  b\u3000c", "words") == "a b c"
    assert lm_line("河流 水。", "chars") == "河 流 水 。"
    docs = lm_sentences(["The Cat\nsat", "委员会"], "line", "ccnet", "chars")
    assert docs == [["t h e c a t", "s a t"], ["委 员 会"]]


def test_fasttext_lines_split_punctuation_and_unspaced_characters():
    spaced, long = fasttext_lines(["Hello, World!\nNext line", "x" * 50], True, max_chars=20)
    # fastText splits on whitespace runs: what counts is the tokens, and one line per text
    assert spaced.endswith("\n") and spaced.count("\n") == 1
    assert spaced.split() == ["hello", ",", "world", "!", "next", "l"]  # the first 20 characters
    assert long == "x" * 20 + "\n"
    (zh,) = fasttext_lines(["委员会，\n发布。"], False)
    assert zh.split() == list("委员会，发布。") and zh.count("\n") == 1
    (plain,) = fasttext_lines(["Keep Case\nand lines"], True, "plain")
    assert plain == "Keep Case and lines\n"
