"""A pure-Python n-gram language model trainer that writes ARPA, for users without KenLM's
`lmplz` (no wheel ships it) and for the demo and the tests. Small corpora only: it holds every
n-gram in Python dicts (measured in the README: tokens/s and memory); for real corpora build
KenLM and run `lmplz` (the README has the command line).

The estimate is interpolated modified Kneser-Ney (Chen & Goodman 1998), as `lmplz` computes it:

* adjusted counts: the raw count for the highest order and for n-grams that start with <s>;
  for the other lower-order n-grams the number of distinct words seen to their left;
* three discounts per order from the count-of-counts t1..t4 of the adjusted counts:
  Y = t1/(t1+2 t2), D1 = 1-2Y t2/t1, D2 = 2-3Y t3/t2, D3+ = 3-4Y t4/t3 (when a count-of-counts
  is zero or a discount falls outside (0, k) — tiny corpora — the fallback 0.5, 1.0, 1.5 is
  used and reported);
* p(w|h) = max(a(hw) - D(a(hw)), 0) / a(h.) + gamma(h) p(w|h'), with
  gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / a(h.), down to unigrams interpolated with
  the uniform distribution over the vocabulary (<unk> and </s> included, <s> excluded).

In ARPA, a seen n-gram stores log10 p(w|h) and a context stores log10 gamma(h) as its
backoff: for an unseen hw, p(w|h) = gamma(h) p(w|h') is exactly the interpolated estimate, so
KenLM's back-off evaluation of the file gives the interpolated model, and every conditional
distribution sums to one (tested through KenLM).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


@dataclass
class NgramModel:
    order: int
    #: per order n (1-based index n-1): n-gram tuple -> (log10 prob, log10 backoff or None)
    grams: list[dict[tuple[str, ...], tuple[float, float | None]]]
    discounts: list[tuple[float, float, float]]
    fallback_orders: list[int] = field(default_factory=list)
    sentences: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def write_arpa(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write("\\data\\\n")
            for n, table in enumerate(self.grams, 1):
                f.write(f"ngram {n}={len(table)}\n")
            for n, table in enumerate(self.grams, 1):
                f.write(f"\n\\{n}-grams:\n")
                for g in sorted(table):
                    lp, bo = table[g]
                    if bo is None:
                        f.write(f"{lp:.7f}\t{' '.join(g)}\n")
                    else:
                        f.write(f"{lp:.7f}\t{' '.join(g)}\t{bo:.7f}\n")
            f.write("\n\\end\\\n")
        tmp.replace(path)
        return path

    def info(self) -> dict:
        return {"order": self.order, "sentences": self.sentences, "n_tokens": self.tokens,
                "ngrams": [len(t) for t in self.grams], "discounts": [[round(d, 4) for d in ds] for ds in self.discounts],
                "fallback_discount_orders": self.fallback_orders, "seconds": round(self.seconds, 3)}


def _discounts(adjusted: Iterable[int]) -> tuple[tuple[float, float, float], bool]:
    t = Counter(a for a in adjusted if a <= 4)  # count-of-counts: how many n-grams occur exactly k times
    t1, t2, t3, t4 = (t.get(k, 0) for k in (1, 2, 3, 4))
    if min(t1, t2, t3, t4) > 0:
        y = t1 / (t1 + 2 * t2)
        d = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < dk < k for dk, k in zip(d, (1, 2, 3), strict=True)):
            return d, False
    return FALLBACK_DISCOUNTS, True


def train_ngram(sentences: Iterable[Sequence[str]], order: int = 3) -> NgramModel:
    """Interpolated modified Kneser-Ney over tokenised sentences (empty ones are skipped)."""
    if order < 2:  # KenLM loads bigram and higher models only
        raise ValueError(f"order must be >= 2, got {order}")
    t0 = time.perf_counter()
    raw: list[Counter] = [Counter() for _ in range(order)]
    n_sent = n_tok = 0
    special = {BOS, EOS, UNK}
    for sent in sentences:
        if special.intersection(sent):  # KenLM's own symbols cannot be words of the text
            sent = [w for w in sent if w not in special]
        if not sent:
            continue
        n_sent += 1
        n_tok += len(sent)
        seq = (BOS, *sent, EOS)
        m = len(seq)
        for n in range(1, order + 1):
            c = raw[n - 1]
            for i in range(m - n + 1):
                c[seq[i:i + n]] += 1
    if not n_sent:
        raise ValueError("no non-empty sentences to train on")
    # adjusted counts
    adj: list[dict[tuple[str, ...], int]] = [dict() for _ in range(order)]
    adj[order - 1] = dict(raw[order - 1])
    for n in range(order - 1, 0, -1):
        left: Counter = Counter()
        for g in raw[n]:  # (n+1)-grams: g[1:] has one more distinct left word
            left[g[1:]] += 1
        a = adj[n - 1]
        for g, c in raw[n - 1].items():
            a[g] = c if g[0] == BOS else left[g]
    # the unigram <s> is never predicted
    adj[0].pop((BOS,), None)
    discounts, fallback = [], []
    for n in range(1, order + 1):
        d, fb = _discounts(adj[n - 1].values())
        discounts.append(d)
        if fb:
            fallback.append(n)
    vocab = [g[0] for g in adj[0]]
    if UNK not in vocab:
        vocab.append(UNK)
    # per context: total, and gamma
    probs: list[dict[tuple[str, ...], float]] = []
    gammas: list[dict[tuple[str, ...], float]] = []
    for n in range(1, order + 1):
        d1, d2, d3 = discounts[n - 1]
        tot: dict[tuple[str, ...], int] = defaultdict(int)
        nk: dict[tuple[str, ...], list[int]] = defaultdict(lambda: [0, 0, 0])
        for g, a in adj[n - 1].items():
            h = g[:-1]
            tot[h] += a
            nk[h][min(a, 3) - 1] += 1
        gamma = {h: (d1 * k[0] + d2 * k[1] + d3 * k[2]) / tot[h] for h, k in nk.items()}
        p: dict[tuple[str, ...], float] = {}
        lower = probs[-1] if probs else None
        for g, a in adj[n - 1].items():
            h = g[:-1]
            disc = d1 if a == 1 else d2 if a == 2 else d3
            base = (1.0 / len(vocab)) if lower is None else lower[g[1:]]
            p[g] = max(a - disc, 0.0) / tot[h] + gamma[h] * base
        if n == 1 and (UNK,) not in p:  # never seen: only the uniform share
            p[(UNK,)] = gamma[()] / len(vocab)
        probs.append(p)
        gammas.append(gamma)
    grams: list[dict[tuple[str, ...], tuple[float, float | None]]] = []
    for n in range(1, order + 1):
        ctx = gammas[n] if n < order else {}
        table: dict[tuple[str, ...], tuple[float, float | None]] = {}
        for g, pv in probs[n - 1].items():
            bo = ctx.get(g)
            table[g] = (math.log10(pv), None if bo is None else math.log10(bo))
        if n == 1:
            bo = ctx.get((BOS,))
            table[(BOS,)] = (-99.0, None if bo is None else math.log10(bo))
        grams.append(table)
    return NgramModel(order=order, grams=grams, discounts=discounts, fallback_orders=fallback,
                      sentences=n_sent, tokens=n_tok, seconds=time.perf_counter() - t0)
