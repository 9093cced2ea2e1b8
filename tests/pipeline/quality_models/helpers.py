"""Tiny models and documents for the model-based quality tests, made on the fly (no download)."""

from __future__ import annotations

import math
import random
from pathlib import Path

EN_WORDS = ("the river town people water farmers market council children bridge summer spring snow "
            "mountain fruit vegetables flood defences residents homes believe changes safer before").split()
EN_STOP = "and of to in that with have is for on was as are by".split()
JUNK_WORDS = "click here login home contact cart sale cheap free buy now deal offer price".split()
ZH_CHARS = "这条河流穿过古老的小镇一直影响着住在岸两边人们生活每年春天山上积雪融化水迅速涨农民不得把牲畜赶到地势较高方"

#: A hand-written bigram ARPA: in-domain text is "the cat sat on the mat".
EN_ARPA = """\\data\\
ngram 1=8
ngram 2=7

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.8\tthe\t-0.25
-1.1\tcat\t-0.3
-1.2\tsat\t-0.3
-1.2\ton\t-0.35
-1.1\tmat\t-0.4

\\2-grams:
-0.2\t<s> the
-0.3\tthe cat
-0.2\tcat sat
-0.1\tsat on
-0.2\ton the
-0.6\tthe mat
-0.1\tmat </s>

\\end\\
"""

#: Characters as tokens (zh is unspaced in the registry): in-domain text is "河流水".
ZH_ARPA = """\\data\\
ngram 1=6
ngram 2=4

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.3
-1.0\t</s>\t0
-0.7\t河\t-0.2
-0.9\t流\t-0.2
-0.9\t水\t-0.2

\\2-grams:
-0.1\t<s> 河
-0.1\t河 流
-0.1\t流 水
-0.1\t水 </s>

\\end\\
"""


def parse_arpa(text: str) -> tuple[dict[tuple[str, ...], float], dict[tuple[str, ...], float], int]:
    """(log10 probs, log10 backoffs, order) of an ARPA text."""
    probs, bows, order, n = {}, {}, 0, 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("\\") and line.endswith("-grams:"):
            n = int(line[1:].split("-")[0])
            order = max(order, n)
            continue
        if not line or line.startswith("\\") or line.startswith("ngram") or n == 0:
            continue
        parts = line.split("\t")
        g = tuple(parts[1].split())
        probs[g] = float(parts[0])
        if len(parts) > 2:
            bows[g] = float(parts[2])
    return probs, bows, order


def arpa_log10(probs, bows, order: int, context: tuple[str, ...], w: str) -> float:
    """log10 p(w | context) by the ARPA back-off rule, unknown words as <unk>."""
    if (w,) not in probs:
        w = "<unk>"
    context = tuple(c if (c,) in probs else "<unk>" for c in context)[-(order - 1):] if order > 1 else ()
    penalty = 0.0
    while True:
        g = (*context, w)
        if g in probs:
            return probs[g] + penalty
        if not context:
            return probs[("<unk>",)] + penalty
        penalty += bows.get(context, 0.0)
        context = context[1:]


def sentence_perplexity(arpa_text: str, tokens: list[str]) -> float:
    """CCNet's pp(): 10 ** (-sum log10 p / (tokens + 1)), with <s> ... </s>, computed here."""
    probs, bows, order = parse_arpa(arpa_text)
    ctx: tuple[str, ...] = ("<s>",)
    total = 0.0
    for w in [*tokens, "</s>"]:
        total += arpa_log10(probs, bows, order, ctx, w)
        ctx = (*ctx, w)
    return 10 ** (-total / (len(tokens) + 1))


def good_en(rng: random.Random, n_sent: int = 6) -> str:
    sents = []
    for _ in range(n_sent):
        words = [rng.choice(EN_WORDS if k % 2 else EN_STOP) for k in range(rng.randint(8, 14))]
        sents.append(" ".join(words).capitalize() + ".")
    return "\n".join(" ".join(sents[i:i + 2]) for i in range(0, len(sents), 2))


def junk_en(rng: random.Random) -> str:
    lines = [" | ".join(rng.sample(JUNK_WORDS, 4)) + f" {rng.randint(1, 99)}.99 $" for _ in range(rng.randint(4, 8))]
    return "\n".join(lines)


def good_zh(rng: random.Random) -> str:
    return "".join("".join(rng.choice(ZH_CHARS) for _ in range(rng.randint(10, 20))) + "。" for _ in range(6))


def junk_zh(rng: random.Random) -> str:
    return "\n".join(" | ".join("".join(rng.choice("点击登录购物车免费") for _ in range(3)) for _ in range(4))
                     + f" ¥{rng.randint(1, 99)}" for _ in range(5))


def tiny_classifiers(out: Path, langs=("en", "zh"), n: int = 40, seed: int = 0, multilingual: bool = False) -> dict:
    """Train tiny fastText classifiers into `out` (well under a second each); name -> metrics."""
    from babelmill.pipeline.quality_models.classifier import TrainParams, train_classifier

    rng = random.Random(seed)
    makers = {"en": (good_en, junk_en, True), "zh": (good_zh, junk_zh, False)}
    params = TrainParams(epoch=15, lr=0.5, dim=8, bucket=2000, holdout=0.25, seed=seed)
    if multilingual:
        pos = [(makers[c][0](rng), makers[c][2]) for c in langs for _ in range(n)]
        neg = [(makers[c][1](rng), makers[c][2]) for c in langs for _ in range(n)]
        return {"multilingual": train_classifier(pos, neg, out / "multilingual.bin", params)}
    res = {}
    for c in langs:
        good, junk, spaced = makers[c]
        pos = [(good(rng), spaced) for _ in range(n)]
        neg = [(junk(rng), spaced) for _ in range(n)]
        res[c] = train_classifier(pos, neg, out / f"{c}.bin", params)
    return res


def write_models(d: Path, en: bool = True, zh: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    if en:
        (d / "en.arpa").write_text(EN_ARPA, encoding="utf-8")
    if zh:
        (d / "zh.arpa").write_text(ZH_ARPA, encoding="utf-8")
    return d


def close(a: float, b: float, rel: float = 1e-4) -> bool:
    return math.isclose(a, b, rel_tol=rel)
