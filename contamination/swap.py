"""The generalized ("choice-swapped") benchmark of Yao et al. (2024).

Every wrong option of an item is replaced by the correct answer of another, randomly chosen item
of the same language (optionally of the same subject). The gold answer keeps its position and
the option count is unchanged, so the benchmark gets *easier* for a model that understands the
questions (the distractors now answer other questions), while a model that memorised the
benchmark sees only "familiar correct answers" and stops profiting.

Donors are drawn per item from a generator seeded by (seed, item id), not by language, so the
translations of one benchmark (aligned by id) get the same donor ids in every language and their
generalized versions stay parallel. The result is saved as JSONL next to the audit output so a
run can be reproduced or inspected.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from babelmill.contamination.benchmarks.loaders import save_jsonl
from babelmill.contamination.items import BenchmarkError, MCItem


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _rng(seed: int, item_id: str) -> random.Random:
    h = hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def generalize(items: Iterable[MCItem], seed: int = 0, same_subject: bool = False) -> list[MCItem]:
    """The generalized version of `items` (all one language or several: donors never cross languages).

    With `same_subject`, donors come from the item's subject when it has enough distinct answers,
    else from the whole language (so small subjects still get a full set of options).
    """
    items = list(items)
    by_lang: dict[str, list[MCItem]] = {}
    for it in items:
        by_lang.setdefault(it.lang, []).append(it)
    out: dict[tuple[str, str], MCItem] = {}
    for lang, group in by_lang.items():
        pool = sorted(group, key=lambda it: it.id)
        n_distinct = len({_key(it.answer) for it in pool})
        need = max(len(it.choices) for it in pool)
        if n_distinct < need:
            raise BenchmarkError(f"language {lang}: only {n_distinct} distinct answers, cannot build "
                                 f"{need}-option generalized items")
        by_subject: dict[str, list[MCItem]] = {}
        for it in pool:
            by_subject.setdefault(it.subject, []).append(it)
        for it in group:
            candidates = pool
            if same_subject:
                sub = by_subject.get(it.subject, [])
                if len({_key(d.answer) for d in sub}) >= len(it.choices):
                    candidates = sub
            out[(lang, it.id)] = _swap_one(it, candidates, pool, _rng(seed, it.id))
    return [out[(it.lang, it.id)] for it in items]


def _swap_one(it: MCItem, candidates: list[MCItem], pool: list[MCItem], rng: random.Random) -> MCItem:
    used = {_key(it.answer)}
    choices = list(it.choices)
    donors: list[str] = []
    order = list(range(len(candidates)))
    rng.shuffle(order)
    queue = [candidates[i] for i in order]
    if candidates is not pool:  # fall back to the whole language if the subject runs dry
        rest = [pool[i] for i in rng.sample(range(len(pool)), len(pool))]
        queue += rest
    qi = 0
    for pos in range(len(choices)):
        if pos == it.gold:
            continue
        while qi < len(queue):
            d = queue[qi]
            qi += 1
            k = _key(d.answer)
            if d.id == it.id or k in used:
                continue
            used.add(k)
            choices[pos] = d.answer
            donors.append(d.id)
            break
        else:  # pragma: no cover - guarded by the distinct-answer check above
            raise BenchmarkError(f"item {it.id!r} ({it.lang}): ran out of donor answers")
    return MCItem(it.id, it.lang, it.question, tuple(choices), it.gold, it.subject, {"donors": donors})


def save_generalized(items: list[MCItem], out_dir: str | Path, benchmark: str) -> list[Path]:
    """One `<out_dir>/<benchmark>/<lang>.jsonl` per language, loadable with load_benchmark."""
    by_lang: dict[str, list[MCItem]] = {}
    for it in items:
        by_lang.setdefault(it.lang, []).append(it)
    return [save_jsonl(v, Path(out_dir) / benchmark / f"{lang}.jsonl") for lang, v in sorted(by_lang.items())]
