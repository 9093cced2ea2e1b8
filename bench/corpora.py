"""Benchmark corpora built from the UDHR demo data (fetched and cached by demo.udhr)."""

from __future__ import annotations

import random

from demo.udhr import load_languages, udhr_paragraphs


def udhr_documents(n: int, seed: int = 0, include_distractors: bool = True, min_paras: int = 3, max_paras: int = 8):
    """`n` (text, lang) documents of 3-8 consecutive UDHR paragraphs, languages drawn uniformly."""
    langs = load_languages(include_distractors=include_distractors)
    paras = {lang: udhr_paragraphs(d) for lang, d in langs.items()}
    codes = sorted(paras)
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lang = rng.choice(codes)
        k = rng.randint(min_paras, max_paras)
        s = rng.randint(0, max(0, len(paras[lang]) - k))
        out.append(("\n\n".join(paras[lang][s : s + k]), lang))
    return out
