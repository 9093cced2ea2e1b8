"""Text primitives shared by the pipeline, the tokenizer tools and the contamination audit: what a
word is, the wordfreq look-ups, the 64-bit hash mixers and the two text normalisers.

They live in one module because each existed in several copies that had started to disagree
(the language-ID stage split Devanagari words at every vowel sign while the quality stage did
not), and because some of them are part of stored data: dedup signatures and LSH band keys are
built from the mixers, exact-dedup hashes from the dedup normaliser. Those must give the same
bits forever (tests/babelmill/test_text.py pins them on fixed inputs); a change there is a new
function, not an edit.

Words
-----
A word is a maximal run of letters, combining marks, digits and `_`: `[\\pL\\pM\\pN_]+`. That is
Python's `\\w+` plus the combining marks (Unicode categories Mn, Mc, Me). `\\w` alone does not
match marks, so it cuts "हिन्दी" into "ह", "न", "द" and "தமிழ்" into "தம", "ழ" (the vowel signs and
viramas of the Brahmic scripts, and Thai, Lao, Khmer and Myanmar vowel and tone marks, are
marks). The definition comes in the three forms its callers need, all the same set of
characters:

* `WORD_RE` / `WORD_SEP`: RE2 patterns for Arrow kernels over whole batches (the quality
  stage's statistics, the token-count proxy of balancing);
* `word_char_table()`: a code point lookup for compiled kernels (near-dedup shingling);
* `words(text)`: one Python string (language ID's word-frequency evidence).

For languages whose registry entry says `space_delimited: false` (zh ja th lo km my) the unit
is not the word but one character: each word character (letter, mark or digit code point) on
its own, marks included as units of their own. The quality stage counts those units and
near dedup shingles over them; neither segments words.

Whitespace-separated tokens are a different measure and stay one where it is meant:
`tokens_per_word` of the tokenizer evaluation is tokens per whitespace word (the figure papers
report), KenLM's "words" token lines are whitespace tokens, and the contamination n-grams split
the output of `normalize_for_contamination`, which already leaves only runs of word characters
separated by single spaces (so `split()` there gives exactly `words()`, minus `_`, which that
normaliser folds as punctuation).

Normalisers
-----------
`normalize_for_dedup` (exact dedup, over Arrow arrays) and `normalize_for_contamination`
(benchmark n-gram overlap, one string) both apply NFKC, fold case and fold punctuation to
spaces, and differ on purpose; see the second's docstring. Neither may change what it returns:
the first feeds stored exact-dedup hashes (pipeline/dedup/index.py NORMALISER_VERSION), the
second stored n-gram indexes.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from babelmill.unicode_scripts import category_table

# -- words -------------------------------------------------------------------------------------
#: the word characters, as an RE2 (Arrow) character-class body: letters, marks, digits, `_`
WORD_CHARS = r"\pL\pM\pN_"
#: one word (RE2)
WORD_RE = rf"[{WORD_CHARS}]+"
#: what separates words (RE2): splitting on it gives the words (and empty strings at the ends)
WORD_SEP = rf"[^{WORD_CHARS}]+"


@lru_cache(maxsize=1)
def word_char_table() -> np.ndarray:
    """code point -> True for word characters (letters, marks, numbers, '_'): what separates
    words in space-delimited scripts and what counts as a character in unspaced ones."""
    t = category_table() > 0
    t[ord("_")] = True
    return t


@lru_cache(maxsize=1)
def _python_word_re() -> re.Pattern:
    """`WORD_RE` for Python's `re`, which has no \\p classes: `\\w` is exactly letters, digits
    and `_` (str.isalnum), so adding every mark code point as ranges gives the same set (checked
    code point by code point in the tests). Built on first use: the scan takes ~0.1 s."""
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    marks = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(rf"[\w{marks}]+")


def words(text: str) -> list[str]:
    """The words of `text`, in order (no case folding: lower-case first where wanted)."""
    return _python_word_re().findall(text)


# -- wordfreq ----------------------------------------------------------------------------------
# wordfreq is an optional dependency (the `langid` extra): imported on first use only.
@lru_cache(maxsize=1)
def wordfreq_languages() -> frozenset[str]:
    """The language codes wordfreq has lists for."""
    import wordfreq

    return frozenset(wordfreq.available_languages())


@lru_cache(maxsize=256)
def stop_words(wf_code: str, top_n: int) -> frozenset[str]:
    """The `top_n` most frequent words of wordfreq's small list for `wf_code` (the quality
    stage's stop words)."""
    import wordfreq

    return frozenset(wordfreq.top_n_list(wf_code, top_n, wordlist="small"))


@lru_cache(maxsize=64)
def log_frequencies(wf_code: str) -> dict[str, float]:
    """word -> log10 frequency under wordfreq's list for `wf_code`, computed once per language
    per worker (language ID's word-frequency evidence)."""
    import math

    import wordfreq

    return {w: math.log10(f) for w, f in wordfreq.get_frequency_dict(wf_code).items() if f > 0}


# -- hash mixers -------------------------------------------------------------------------------
#: 2^64 / golden ratio: splitmix64's increment, also used to spread small seeds
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def mix64(x):
    """splitmix64's finaliser (Stafford's variant 13) on uint64: a bijection whose every output
    bit depends on every input bit. Written for both numpy and numba: numpy arrays (wrapping
    arithmetic, no warnings) and, compiled with `numba.njit(mix64)`, np.uint64 scalars inside
    kernels (pipeline/dedup/hashing.py). For numpy scalars call `splitmix64`, which silences
    numpy's overflow warning."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """`mix64` for numpy (arrays or scalars, uint64 in and out; arithmetic wraps as intended).
    The name is historical: this is the finaliser only, without splitmix64's increment; LSH band
    keys and shuffle partitions are built on it."""
    with np.errstate(over="ignore"):
        return mix64(x)


def splitmix64_step(x: np.ndarray) -> np.ndarray:
    """The full splitmix64 output for state `x`: `mix64(x + GOLDEN_GAMMA)` (any integer array,
    taken as uint64). The increment makes 0 map to a non-zero value, which the quality stage's
    n-gram hashes over word ids (0, 1, 2, ...) want."""
    with np.errstate(over="ignore"):
        return mix64(np.asarray(x).astype(np.uint64) + np.uint64(GOLDEN_GAMMA))


def mix64_lite(h):
    """A cheaper mixer (one multiply): xor-shift 31, multiply by splitmix64's first constant,
    xor-shift 29. One-permutation MinHash applies it to shingle hashes that `mix64` already
    mixed, per shingle and in a hot loop, where the full finaliser would be wasted work. Like
    `mix64`, written for numpy and for `numba.njit`."""
    h = (h ^ (h >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return h ^ (h >> np.uint64(29))


# -- normalisers -------------------------------------------------------------------------------
# RE2: `\s` is ASCII whitespace only; NFKC has already turned most Unicode spaces into U+0020.
_DEDUP_FOLD = r"[\s\p{P}\p{S}]+"


def normalize_for_dedup(texts: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Exact dedup's normal form, over a whole Arrow array: NFKC, lower case, every run of
    (ASCII) whitespace, punctuation and symbols -> one space, trimmed. Format characters
    (ZWJ, ZWNJ, ...) and other controls are kept.

    "NFKC" is what is asked of Arrow; the pyarrow in use (25.0.1) returns the decomposed form
    for it, i.e. NFKD ("É" -> "e" + U+0301; apache/arrow#51225, fixed upstream by #51237). A
    decomposed form is as canonical as a composed one, so duplicates still meet; but a pyarrow
    with the fix changes the hash of every text with a composable sequence, which must then be
    a new pipeline/dedup/index.py NORMALISER_VERSION. tests/babelmill/test_text.py pins the
    output so that such an upgrade fails there first."""
    t = pc.utf8_normalize(texts, "NFKC")
    t = pc.utf8_lower(t)
    t = pc.replace_substring_regex(t, _DEDUP_FOLD, " ")
    return pc.utf8_trim_whitespace(t)


def normalize_for_contamination(text: str) -> str:
    """The contamination audit's normal form of one string: NFKC, casefold, every punctuation,
    symbol, separator and control/format character (categories P S Z C) -> a space, whitespace
    collapsed to single spaces.

    Why it differs from `normalize_for_dedup`. Dedup asks "is this the same document?" over
    millions of documents per batch: it runs as Arrow kernels, lower-cases (Arrow has no
    casefold) and leaves invisible characters alone, so two pages differ if one has a ZWNJ
    where the other has none (which in Persian or Hindi spelling is a different word). The
    audit asks "does this benchmark item's text occur in the corpus?": it normalises a few
    thousand items and scans documents one string at a time, and it wants matches that survive
    the small edits copying introduces: casefold ("Straße" matches "STRASSE"), format characters
    and line/paragraph separators become word breaks, and the result is words separated by
    single spaces, so that word n-grams are a `split()` away."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in t)
    return " ".join(t.split())
