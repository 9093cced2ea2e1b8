"""Multiple-choice scoring by option log-likelihood, the way lm-eval scores its MC tasks.

Prompt: "Question: {q}\nAnswer:" + " {choice}". The continuation's tokens are
`encode(context + continuation)[len(encode(context)):]` (lm-eval's split, so scores agree with it
token for token). `acc` picks the option with the largest summed log-likelihood, `acc_norm` the
largest log-likelihood per character of the option text (`len(choice)`, without the leading space:
lm-eval 0.4 divides by `len(doc_to_choice(doc)[i])`).

Speed: the context is encoded once per item; requests are sorted by length so batches carry
little padding; a backend with `score_items` (HF) runs each context once and reuses its KV cache
for all options. Results are put back in item order, so they do not depend on batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from babelmill.contamination.items import MCItem

PROMPT = "Question: {question}\nAnswer:"


def context_of(item: MCItem) -> str:
    return PROMPT.format(question=item.question)


def continuations_of(item: MCItem) -> list[str]:
    return [" " + c for c in item.choices]


@dataclass
class ItemScore:
    id: str
    lang: str
    gold: int
    loglik: list[float]
    cont_chars: list[int]

    @property
    def pred(self) -> int:
        return int(np.argmax(self.loglik))

    @property
    def pred_norm(self) -> int:
        return int(np.argmax(np.asarray(self.loglik) / np.asarray(self.cont_chars, dtype=float)))

    @property
    def correct(self) -> bool:
        return self.pred == self.gold

    @property
    def correct_norm(self) -> bool:
        return self.pred_norm == self.gold


def summarize(scores: Sequence[ItemScore]) -> dict:
    n = len(scores)
    return {"n": n,
            "acc": float(np.mean([s.correct for s in scores])) if n else float("nan"),
            "acc_norm": float(np.mean([s.correct_norm for s in scores])) if n else float("nan")}


def _encode_item(backend, item: MCItem) -> tuple[list[int], list[list[int]]]:
    ctx = context_of(item)
    ctx_ids = backend.encode(ctx)
    conts = []
    for cont in continuations_of(item):
        whole = backend.encode(ctx + cont)
        c = whole[len(ctx_ids):]
        if not c:  # a tokenizer merged the option into the context: score its own tokens instead
            c = backend.encode(cont)
        conts.append(c)
    if not ctx_ids:
        ctx_ids = [backend.eos_id if backend.eos_id is not None else 0]
    return ctx_ids, conts


def _requests(ctx: list[int], conts: list[list[int]], max_len: int) -> list[tuple[list[int], list[list[int]]]]:
    """One shared-context request, or - when context + an option exceeds the window - one request per
    option with the context left-truncated for that option alone, exactly as lm-eval truncates
    `(context + continuation)[-(max_len + 1):]`."""
    if len(ctx) + max(len(c) for c in conts) <= max_len + 1:
        return [(ctx, conts)]
    out = []
    for c in conts:
        c = c[-max_len:]
        out.append((ctx[-(max_len + 1 - len(c)):], [c]))
    return out


def score_items(backend, items: Sequence[MCItem], batch_size: int = 32, progress: bool = False) -> list[ItemScore]:
    """Log-likelihood of every option of every item; deterministic and independent of batch size."""
    encoded = [_encode_item(backend, it) for it in items]
    # longest first: the first batch shows at once whether memory suffices (as lm-eval does)
    order = sorted(range(len(items)), key=lambda i: (-(len(encoded[i][0]) + max(map(len, encoded[i][1]))), i))
    lls: list[list[float] | None] = [None] * len(items)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="scoring", unit="item", leave=False)
    if hasattr(backend, "score_items"):
        per_batch = max(1, batch_size // max(1, max(len(it.choices) for it in items)))
        for b in range(0, len(order), per_batch):
            idx = order[b : b + per_batch]
            reqs, owner = [], []
            for i in idx:
                r = _requests(*encoded[i], backend.max_len)
                reqs += r
                owner += [i] * len(r)
            got: dict[int, list[float]] = {}
            for i, res in zip(owner, backend.score_items(reqs), strict=True):
                got.setdefault(i, []).extend(res)
            for i in idx:
                lls[i] = got[i]
            if bar:
                bar.update(len(idx))
    else:
        flat = [(i, j) for i in order for j in range(len(encoded[i][1]))]
        sums: dict[tuple[int, int], float] = {}
        for b in range(0, len(flat), batch_size):
            chunk = flat[b : b + batch_size]
            seqs = [(encoded[i][0] + encoded[i][1][j])[-(backend.max_len + 1):] for i, j in chunk]
            for (i, j), lp in zip(chunk, backend.token_logprobs(seqs), strict=True):
                n = len(encoded[i][1][j])
                sums[(i, j)] = float(np.sum(lp[-n:]))
            if bar:
                bar.update(len({i for i, _ in chunk}))
        for i in range(len(items)):
            lls[i] = [sums[(i, j)] for j in range(len(encoded[i][1]))]
    if bar:
        bar.close()
    return [ItemScore(it.id, it.lang, it.gold, ll, [max(1, len(c)) for c in it.choices])
            for it, ll in zip(items, lls, strict=True)]
