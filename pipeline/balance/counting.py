"""Per-document character and token counts, vectorised over Arrow arrays.

Until the project tokenizer exists, tokens are counted by a *proxy*: pre-tokens, i.e. words
and punctuation marks (letter/mark/digit runs and single other symbols) for space-delimited languages and non-space characters
for unspaced scripts (zh, ja, th, lo, km, my — from the registry), which tracks subword
token counts far better across scripts than UTF-8 bytes do. Given `tokenizer: path/to/
tokenizer.json` the counts are exact tokens of that tokenizer (HF `tokenizers`, batch encode).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from babelmill.text import WORD_CHARS, WORD_RE

# RE2 (Arrow's regex engine) has ASCII-only \w and \s: spell the Unicode classes out.
SPACED_PROXY = rf"{WORD_RE}|[^{WORD_CHARS}\s\pZ]"  # a word of babelmill.text, or one other symbol
UNSPACED_PROXY = r"[^\s\pZ\pM]"  # base characters (combining marks ride along)


def _np(a) -> np.ndarray:
    return pc.fill_null(a, 0).to_numpy(zero_copy_only=False).astype(np.int64)


def proxy_tokens(texts: pa.Array, langs: pa.Array, registry) -> np.ndarray:
    """Pre-token counts; the pattern per document comes from its language's registry entry."""
    spaced = np.array([registry.is_space_delimited(x) if x in registry else True
                       for x in langs.to_pylist()], dtype=bool)
    out = np.zeros(len(texts), dtype=np.int64)
    if spaced.any():
        out[spaced] = _np(pc.count_substring_regex(texts.filter(pa.array(spaced)), SPACED_PROXY))
    if (~spaced).any():
        out[~spaced] = _np(pc.count_substring_regex(texts.filter(pa.array(~spaced)), UNSPACED_PROXY))
    return out


@lru_cache(maxsize=4)
def _load_tokenizer(path: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def tokenizer_tokens(texts: pa.Array, path: str, batch: int = 1024) -> np.ndarray:
    tok = _load_tokenizer(path)
    values = [t or "" for t in texts.to_pylist()]
    out = np.zeros(len(values), dtype=np.int64)
    for i in range(0, len(values), batch):
        enc = tok.encode_batch(values[i:i + batch], add_special_tokens=False)
        out[i:i + batch] = [len(e.ids) for e in enc]
    return out


def count_tokens(texts: pa.Array, langs: pa.Array, counter: str, registry) -> np.ndarray:
    return proxy_tokens(texts, langs, registry) if counter == "proxy" else tokenizer_tokens(texts, counter)


def counter_description(counter: str) -> dict:
    if counter == "proxy":
        return {"kind": "proxy", "spaced": SPACED_PROXY, "unspaced": UNSPACED_PROXY}
    h = hashlib.sha256(open(counter, "rb").read()).hexdigest()[:16]
    return {"kind": "tokenizer", "path": counter, "sha256_16": h}


def char_counts(texts: pa.Array) -> np.ndarray:
    return _np(pc.utf8_length(texts))
