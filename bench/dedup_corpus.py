"""Synthetic corpus for measuring deduplication quality and speed, in many scripts.

Plants, per language: exact duplicates (identical after normalisation: case and spacing
changed), near duplicates (1-10% of words, or characters for unspaced scripts, substituted or
deleted), and hard negatives (distinct documents that share a long boilerplate header and
footer). The truth is returned with the documents. `score` reports recall over every planted
near pair (a near duplicate is what was made as one: 1-10% edited), per script family and per
language, and over the pairs whose character 5-gram Jaccard is >= 0.8 by the ruler of
bench/dedup_ruler.py, which the pipeline does not use. `true_jaccard` is the pipeline's own
shingle Jaccard, for tests of how well signatures estimate it, never for recall.
"""

from __future__ import annotations

import random

from babelmill.pipeline.dedup.hashing import shingle_hashes
from bench.dedup_ruler import ruler_jaccard

# language -> (spaced, alphabet). Spaced languages get words of 2-9 letters of their alphabet.
ALPHABETS = {
    "en": (True, "abcdefghijklmnopqrstuvwxyz"),
    "fr": (True, "abcdefghijklmnopqrstuvwxyzéèàç"),
    "ru": (True, "абвгдеёжзийклмнопрстуфхцчшщыэюя"),
    "ar": (True, "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"),
    "hi": (True, "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह"),
    "el": (True, "αβγδεζηθικλμνξοπρστυφχψω"),
    "zh": (False, "".join(chr(c) for c in range(0x4E00, 0x4E00 + 2500))),
    "ja": (False, "".join(chr(c) for c in range(0x3041, 0x3097)) + "".join(chr(c) for c in range(0x4E00, 0x4E00 + 800))),
    "th": (False, "".join(chr(c) for c in range(0x0E01, 0x0E2F)) + "ะาิีึืุู"),
}


def _vocab(alphabet: str, rng: random.Random, n: int = 3000) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def _doc(spaced: bool, alphabet: str, vocab: list[str], rng: random.Random, size: int) -> str:
    if spaced:
        return " ".join(rng.choice(vocab) for _ in range(size))
    return "".join(rng.choice(alphabet) for _ in range(size * 3))


def edit(text: str, spaced: bool, share: float, alphabet: str, vocab: list[str], rng: random.Random) -> str:
    units = text.split(" ") if spaced else list(text)
    k = max(1, round(len(units) * share))
    for j in sorted(rng.sample(range(len(units)), k), reverse=True):
        if rng.random() < 0.5:
            del units[j]
        else:
            units[j] = rng.choice(vocab) if spaced else rng.choice(alphabet)
    return (" " if spaced else "").join(units)


def generate(n_unique: int = 2000, seed: int = 0, langs=None, size=(150, 400)):
    """Returns (docs, truth): docs are dicts (id, text, lang); truth has `exact` and `near`
    pairs (dup_id, original_id[, edit share]), `hard_negatives` ids and `unique` ids."""
    rng = random.Random(seed)
    langs = list(langs or ALPHABETS)
    vocabs = {lang: _vocab(ALPHABETS[lang][1], rng) for lang in langs}
    docs, exact, near, hard, unique = [], [], [], [], []
    for i in range(n_unique):
        lang = langs[i % len(langs)]
        spaced, alphabet = ALPHABETS[lang]
        text = _doc(spaced, alphabet, vocabs[lang], rng, rng.randint(*size))
        did = f"{lang}-{i:06d}"
        docs.append({"id": did, "text": text, "lang": lang})
        unique.append(did)
        r = rng.random()
        if r < 0.08:  # exact duplicate, differing only in case and spacing
            t2 = text.upper() if spaced else text
            t2 = t2.replace(" ", "  ", 3) + " \n"
            docs.append({"id": did + "-x", "text": t2, "lang": lang})
            exact.append((did + "-x", did))
        elif r < 0.20:  # near duplicate
            share = rng.choice([0.01, 0.02, 0.03, 0.05, 0.07, 0.10])
            docs.append({"id": did + "-n", "text": edit(text, spaced, share, alphabet, vocabs[lang], rng), "lang": lang})
            near.append((did + "-n", did, share))
    # hard negatives: pairs of different documents around the same long boilerplate
    for lang in langs:
        spaced, alphabet = ALPHABETS[lang]
        head = _doc(spaced, alphabet, vocabs[lang], rng, 120)
        foot = _doc(spaced, alphabet, vocabs[lang], rng, 120)
        sep = " " if spaced else ""
        for k in range(max(2, n_unique // 100)):
            body = _doc(spaced, alphabet, vocabs[lang], rng, rng.randint(80, 140))  # J with a sibling ~0.5
            did = f"{lang}-hard-{k:04d}"
            docs.append({"id": did, "text": sep.join([head, body, foot]), "lang": lang})
            hard.append(did)
    rng.shuffle(docs)
    return docs, {"exact": exact, "near": near, "hard_negatives": hard, "unique": unique}


def true_jaccard(a: str, b: str, lang: str, word_ngram: int = 5, char_ngram: int = 5) -> float:
    spaced = ALPHABETS[lang][0]
    n = word_ngram if spaced else char_ngram
    sa, sb = set(shingle_hashes(a, spaced, n).tolist()), set(shingle_hashes(b, spaced, n).tolist())
    return len(sa & sb) / max(1, len(sa | sb))


def score(docs, truth, rejects: list[dict]) -> dict:
    """Recall on every planted near pair (per family and language), on the near pairs with ruler
    J >= 0.8 (bench/dedup_ruler.ruler_jaccard) and on exact pairs; wrongly removed unique docs."""
    text = {d["id"]: d for d in docs}
    rep = {r["id"]: r["kept_id"] for r in rejects if r["reason"] in ("dup_exact", "dup_near")}

    def root(x):
        seen = 0
        while x in rep and seen < 100:
            x, seen = rep[x], seen + 1
        return x

    def found(a, b):
        return root(a) == root(b)

    def family(lang):
        return "spaced" if ALPHABETS[lang][0] else "unspaced"

    def cell(d, key):
        return d.setdefault(key, {"pairs": 0, "found": 0, "pairs_j08": 0, "found_j08": 0, "wrong": 0, "unique": 0})

    by_family: dict[str, dict] = {}
    by_lang: dict[str, dict] = {}
    for dup, orig, _ in truth["near"]:
        lang = text[orig]["lang"]
        hi = ruler_jaccard(text[dup]["text"], text[orig]["text"]) >= 0.8
        ok = found(dup, orig)
        for f in (cell(by_family, family(lang)), cell(by_lang, lang)):
            f["pairs"] += 1
            f["found"] += ok
            f["pairs_j08"] += hi
            f["found_j08"] += ok and hi
    exact_found = sum(found(a, b) for a, b in truth["exact"])
    planted = {a for a, *_ in truth["exact"]} | {a for a, *_ in truth["near"]}
    originals = {b for _, b, *_ in truth["exact"]} | {b for _, b, *_ in truth["near"]}
    # a unique document is wrongly removed if it was dropped but has no planted duplicate
    innocent = [d for d in [*truth["unique"], *truth["hard_negatives"]] if d not in originals]
    wrong = [d for d in innocent if d in rep]
    for d in innocent:
        lang = text[d]["lang"]
        for f in (cell(by_family, family(lang)), cell(by_lang, lang)):
            f["unique"] += 1
            f["wrong"] += d in rep

    def rates(cells):
        return {k: {**v, "recall": v["found"] / max(1, v["pairs"]), "recall_j08": v["found_j08"] / max(1, v["pairs_j08"]),
                    "wrong_rate": v["wrong"] / max(1, v["unique"])} for k, v in sorted(cells.items())}

    pairs = sum(v["pairs"] for v in by_family.values())
    pairs_j08 = sum(v["pairs_j08"] for v in by_family.values())
    return {
        "near_pairs": pairs,
        "near_recall": sum(v["found"] for v in by_family.values()) / max(1, pairs),
        "near_pairs_j08": pairs_j08,
        "near_recall_j08": sum(v["found_j08"] for v in by_family.values()) / max(1, pairs_j08),
        "exact_recall": exact_found / max(1, len(truth["exact"])),
        "unique_docs": len(innocent),
        "wrongly_removed": len(wrong),
        "wrongly_removed_rate": len(wrong) / max(1, len(innocent)),
        "hard_negatives_removed": sum(d in rep for d in truth["hard_negatives"]),
        "planted_dropped": len(planted & set(rep)),
        "by_family": rates(by_family),
        "by_lang": rates(by_lang),
    }


__all__ = ["ALPHABETS", "edit", "generate", "score", "true_jaccard"]
