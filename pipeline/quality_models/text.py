"""Text preparation shared by the KenLM and fastText scorers and by their trainers.

Normalisation for KenLM (`normalize`), as CCNet applied it before SentencePiece
(cc_net/text_normalizer.py `normalize(line)`, defaults accent=True, case=True, numbers=True,
punct=1): strip; lower-case; NFD and drop every nonspacing mark (Mn); every decimal digit
(Unicode Nd) -> "0"; CCNet's table of Unicode punctuation -> ASCII; control characters
U+0000-U+001F and U+007F-U+009F removed (so newlines too: CCNet's document perplexity scores the
whole document as one sentence, its lines glued together). Implemented as strip + lower + NFD
and a single `str.translate`, which gives CCNet's output exactly (tests/pipeline/quality_models
checks it against a transcription of CCNet's function) in C-speed passes.

Modes: "ccnet" (the above; use it with published CCNet/BLOOM models), "ccnet_keep_accents"
(the same without NFD and mark removal: CCNet's accent stripping also deletes many Indic, Thai
and Khmer vowel signs, which a model trained from scratch may prefer to keep), "none".

Tokens for KenLM (`lm_line`): a model directory decides per language, never the code —
"sentencepiece" when the directory has `<lang>.sp.model` (CCNet/BLOOM pairs each model with
one), else the language's sidecar `<lang>.lm.json` (written by `babelmill quality-model
train-lm`), else the registry: "words" (whitespace-separated) for space-delimited languages and
"chars" (every non-whitespace character one token) for languages with `space_delimited: false`
(zh ja th lo km my), whose words are not separated by spaces. The character unit is the one the
`quality` stage counts for those languages; it needs no word segmenter, and a 3-5-gram of
characters spans one to two words.

Lines for fastText (`fasttext_lines`): "babelmill" (what `babelmill quality-model train`
trains on): the first `max_chars` characters, lower-cased, punctuation split off as tokens,
unspaced languages split into characters (fastText only splits on whitespace: an unspaced
document would otherwise be a handful of huge "words"), newlines as spaces; "plain" (models trained elsewhere, e.g. DCLM-style): the first `max_chars` characters with
newlines replaced by spaces.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import lru_cache
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from babelmill.text import WORD_CHARS

NormalizeMode = Literal["ccnet", "ccnet_keep_accents", "none"]
LmTokens = Literal["sentencepiece", "words", "chars"]
FasttextPreprocess = Literal["babelmill", "plain"]

#: cc_net/text_normalizer.py UNICODE_PUNCT (replace_unicode_punct, punct=1)
UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"',
    "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!",
    "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...",
    "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}
_CONTROL = [*range(0, 32), *range(127, 160)]


@lru_cache(maxsize=2)
def _table(strip_marks: bool) -> dict[int, str | None]:
    """One translate table for CCNet's steps after lower-casing and NFD, in CCNet's order:
    marks removed, then digits -> 0, then punctuation, then control characters removed. No
    step's output is input to a later one (replacements are ASCII punctuation, digits become
    "0"), so one pass equals the sequence; where two steps claim a character the earlier wins
    (U+FF11 FULLWIDTH DIGIT ONE is a digit before it is punctuation)."""
    table: dict[int, str | None] = {}
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        cat = unicodedata.category(chr(cp))
        if cat == "Mn" and strip_marks:
            table[cp] = None
        elif cat == "Nd":
            table[cp] = "0"
    for k, v in UNICODE_PUNCT.items():
        table.setdefault(ord(k), v)
    for cp in _CONTROL:
        table.setdefault(cp, None)
    return table


def normalize(text: str, mode: NormalizeMode = "ccnet") -> str:
    """CCNet's `normalize` (mode "ccnet"), or its variant that keeps accents and vowel signs."""
    if mode == "none":
        return text
    text = text.strip()
    if not text:
        return text
    text = text.lower()
    if mode == "ccnet":
        return unicodedata.normalize("NFD", text).translate(_table(True))
    return text.translate(_table(False))


def lm_lines(text: str, unit: Literal["document", "line"], mode: NormalizeMode) -> list[str]:
    """The normalised sentences KenLM scores for one document: "document" = the whole document
    as one sentence (CCNet's mine.py and datatrove/BLOOM: normalise the document, which removes
    its newlines); "line" = each non-empty line on its own (CCNet's DocLM over raw lines, minus
    the empty lines it would score as "<s> </s>"). An empty result means nothing to score."""
    if unit == "document":
        s = normalize(text, mode)
        return [s] if s.strip() else []
    out = []
    for line in text.split("\n"):
        s = normalize(line, mode)
        if s.strip():
            out.append(s)
    return out


def lm_line(sentence: str, tokens: LmTokens) -> str:
    """A normalised sentence as the space-separated tokens of a non-SentencePiece model."""
    if tokens == "chars":
        return " ".join("".join(sentence.split()))
    return " ".join(sentence.split())


def lm_sentences(texts: list[str], unit: Literal["document", "line"], mode: NormalizeMode, tokens: LmTokens,
                 sp=None) -> list[list[str]]:
    """Per document, its sentences as space-separated token strings, ready for KenLM."""
    per_doc = [lm_lines(t, unit, mode) for t in texts]
    if tokens == "sentencepiece":
        if sp is None:
            raise ValueError("SentencePiece tokens need a SentencePiece model")
        flat = [s for doc in per_doc for s in doc]
        pieces = sp.encode(flat, out_type=str, num_threads=1) if flat else []
        it = iter(pieces)
        return [[" ".join(next(it)) for _ in doc] for doc in per_doc]
    return [[lm_line(s, tokens) for s in doc] for doc in per_doc]


def fasttext_lines(texts: pa.Array | list[str], spaced: bool, preprocess: FasttextPreprocess = "babelmill",
                   max_chars: int = 10_000) -> list[str]:
    """One fastText input line per text (newline-terminated, as fastText's predict wants).
    Arrow kernels over the whole array: one pass per step, no per-document Python."""
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.large_string())
    arr = pc.utf8_slice_codeunits(pc.fill_null(arr, ""), 0, max_chars)
    if preprocess == "babelmill":
        arr = pc.utf8_lower(arr)
        if spaced:  # punctuation and symbols become tokens of their own ("end." -> "end .")
            arr = pc.replace_substring_regex(arr, rf"([^{WORD_CHARS}\s])", r" \1 ")
        else:  # every character a token (fastText splits on whitespace runs, so spaces are free)
            return [" ".join(s.replace("\n", " ")) + "\n" for s in arr.to_pylist()]
    # a newline would end fastText's line: the rest of the document would be ignored
    return [s.replace("\n", " ") + "\n" for s in arr.to_pylist()]
