"""Unicode script of text, fast enough to run on every document.

Python's `unicodedata` has no Script property, so we build a lookup table (codepoint ->
script id) once from the block ranges of the scripts the pipeline cares about; everything
else counts as Common (punctuation, digits, spaces, symbols, combining marks) and is ignored
when choosing the dominant script. Batches are processed with one numpy pass: all texts'
prefixes are concatenated, mapped through the table and counted with one `bincount`.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np

# ISO 15924 code -> list of inclusive codepoint ranges
RANGES: dict[str, list[tuple[int, int]]] = {
    "Latn": [(0x41, 0x5A), (0x61, 0x7A), (0xAA, 0xAA), (0xBA, 0xBA), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x24F),
             (0x250, 0x2AF), (0x1D00, 0x1D7F), (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF),
             (0xAB30, 0xAB6F), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)],
    "Grek": [(0x370, 0x3FF), (0x1F00, 0x1FFF)],
    "Cyrl": [(0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)],
    "Armn": [(0x531, 0x58F)],
    "Hebr": [(0x591, 0x5FF), (0xFB1D, 0xFB4F)],
    "Arab": [(0x600, 0x604), (0x606, 0x60B), (0x60D, 0x61A), (0x61C, 0x61E), (0x620, 0x63F), (0x641, 0x64A),
             (0x656, 0x66F), (0x671, 0x6DC), (0x6DE, 0x6FF), (0x750, 0x77F), (0x8A0, 0x8FF), (0xFB50, 0xFDFF),
             (0xFE70, 0xFEFF)],
    "Syrc": [(0x700, 0x74F)],
    "Thaa": [(0x780, 0x7BF)],
    "Deva": [(0x900, 0x963), (0x966, 0x97F), (0xA8E0, 0xA8FF)],
    "Beng": [(0x980, 0x9FF)],
    "Guru": [(0xA00, 0xA7F)],
    "Gujr": [(0xA80, 0xAFF)],
    "Orya": [(0xB00, 0xB7F)],
    "Taml": [(0xB80, 0xBFF)],
    "Telu": [(0xC00, 0xC7F)],
    "Knda": [(0xC80, 0xCFF)],
    "Mlym": [(0xD00, 0xD7F)],
    "Sinh": [(0xD80, 0xDFF)],
    "Thai": [(0xE01, 0xE3A), (0xE40, 0xE5B)],
    "Laoo": [(0xE80, 0xEFF)],
    "Tibt": [(0xF00, 0xFFF)],
    "Mymr": [(0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F)],
    "Geor": [(0x10A0, 0x10FF), (0x2D00, 0x2D2F)],
    "Hang": [(0x1100, 0x11FF), (0x3131, 0x318E), (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xD7B0, 0xD7FF), (0xFFA0, 0xFFDC)],
    "Ethi": [(0x1200, 0x139F), (0x2D80, 0x2DDF)],
    "Cher": [(0x13A0, 0x13FF)],
    "Tglg": [(0x1700, 0x171F)],
    "Khmr": [(0x1780, 0x17FF), (0x19E0, 0x19FF)],
    "Mong": [(0x1800, 0x18AF)],
    "Hira": [(0x3041, 0x309F)],
    "Kana": [(0x30A1, 0x30FA), (0x30FD, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF6F), (0xFF71, 0xFF9D)],
    "Bopo": [(0x3100, 0x312F)],
    "Hani": [(0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
             (0xF900, 0xFAFF), (0x20000, 0x2FFFF)],
}
COMMON = "Zyyy"
SCRIPTS: tuple[str, ...] = (COMMON, *RANGES)
SCRIPT_ID = {s: i for i, s in enumerate(SCRIPTS)}
_TABLE_SIZE = 0x110000  # all of Unicode: 1.1 MB, so no clipping pass is needed


def _build_table() -> np.ndarray:
    t = np.zeros(_TABLE_SIZE, dtype=np.uint8)
    for name, ranges in RANGES.items():
        for lo, hi in ranges:
            t[lo : hi + 1] = SCRIPT_ID[name]
    return t


TABLE = _build_table()


def script_counts(texts: list[str], max_chars: int = 2000) -> np.ndarray:
    """Matrix (len(texts), len(SCRIPTS)) of character counts per script over each prefix."""
    n = len(texts)
    if n == 0:
        return np.zeros((0, len(SCRIPTS)), dtype=np.int64)
    prefixes = [t[:max_chars] for t in texts]
    lens = np.fromiter(map(len, prefixes), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(prefixes).encode("utf-32-le", "replace"), dtype=np.uint32)
    sid = TABLE[cps]  # "replace" above guarantees valid code points (< 0x110000)
    doc = np.repeat(np.arange(n, dtype=np.int64), lens)
    return np.bincount(doc * len(SCRIPTS) + sid, minlength=n * len(SCRIPTS)).reshape(n, len(SCRIPTS))


def dominant_from_counts(counts: np.ndarray) -> list[str]:
    c = counts.copy()
    c[:, 0] = 0
    best = c.argmax(axis=1)
    best[c.max(axis=1) == 0] = 0
    return [SCRIPTS[i] for i in best]


def dominant_scripts(texts: list[str], max_chars: int = 2000) -> list[str]:
    """ISO 15924 code of the most frequent non-Common script of each text ('Zyyy' if none)."""
    return dominant_from_counts(script_counts(texts, max_chars))


def dominant_script(text: str, max_chars: int = 2000) -> str:
    return dominant_scripts([text], max_chars)[0]


def script_fractions(text: str, max_chars: int | None = None) -> dict[str, float]:
    """Share of each script among the non-Common characters of `text`."""
    counts = script_counts([text], max_chars or len(text) or 1)[0]
    counts[0] = 0
    total = counts.sum()
    if total == 0:
        return {}
    return {SCRIPTS[i]: float(c) / total for i, c in enumerate(counts) if c}


_CAT_LIMIT = 0x40000  # planes 0-3; above that nothing is a letter, mark or number


@lru_cache(maxsize=1)
def category_table() -> np.ndarray:
    """code point -> 1 letter, 2 mark, 3 number, 0 other (spaces, punctuation, symbols): the
    word-character test shared by the quality statistics and shingling, as one numpy lookup."""
    t = np.zeros(0x110000, dtype=np.uint8)
    code = {"L": 1, "M": 2, "N": 3}
    cats = [code.get(unicodedata.category(chr(i))[0], 0) for i in range(_CAT_LIMIT)]
    t[:_CAT_LIMIT] = np.array(cats, dtype=np.uint8)
    return t
