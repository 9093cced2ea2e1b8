"""Stream (lang, text) documents from JSONL/Parquet files or directories.

Reads through the pipeline's readers (plan_units, then read_corpus in quarantine mode), so
the tokenizer sees the same inputs, with the same tolerance of broken records (counted by
reason in the ReadReport), as every other stage. The language column is the first non-empty
one among `lang_fields`: `lang` (written by the LID stage) and, for raw demo data that has
not been through LID, `lang_true`. Documents whose language is not a
target of the registry (distractors, LID misses) are counted and skipped, never trained on.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from babelmill.errors import BabelmillError
from babelmill.pipeline.io.readers import InputError, OnBad, Quarantine, ReadOptions, plan_units, read_corpus

DEFAULT_LANG_FIELDS = ("lang", "lang_true")


class TokenizerError(BabelmillError, ValueError):
    """A tokenizer training input or option the user must fix (no documents in a target
    language, a vocabulary too small for the sample): one line for the user."""


@dataclass
class Doc:
    key: str  # stable identity for deterministic sampling: source + offset
    lang: str
    text: str


@dataclass
class ReadReport:
    """What was skipped while reading, so the metadata can account for every input record."""

    rejected: Counter = field(default_factory=Counter)  # reader reject reason -> count
    non_target: Counter = field(default_factory=Counter)  # lang (or "<none>") -> count


def _options(lang_fields: Iterable[str], batch_size: int) -> ReadOptions:
    return ReadOptions(extra_fields=tuple(lang_fields), batch_size=batch_size, id_field=None)


def plan(inputs: list[str], lang_fields: Iterable[str] = DEFAULT_LANG_FIELDS, batch_size: int = 1000):
    opts = _options(lang_fields, batch_size)
    units = plan_units([str(p) for p in inputs], opts)
    if not units:
        raise InputError(", ".join(map(str, inputs)), "no_input", "no JSONL or Parquet files found")
    return units, opts


def fingerprint(inputs: list[str], lang_fields: Iterable[str] = DEFAULT_LANG_FIELDS) -> str:
    """Cheap input fingerprint (sizes, mtimes and edge hashes of every work unit): decides whether
    a trained tokenizer is still current without re-reading the corpus."""
    units, _ = plan(inputs, lang_fields)
    h = hashlib.sha256()
    for u in units:
        h.update(f"{u.source}|{u.fingerprint()}\n".encode())
    return h.hexdigest()[:16]


def iter_docs(
    inputs: list[str],
    targets: set[str],
    lang_fields: Iterable[str] = DEFAULT_LANG_FIELDS,
    report: ReadReport | None = None,
    batch_size: int = 1000,
    on_bad: OnBad = "quarantine",
) -> Iterator[Doc]:
    """Target-language documents in input order (deterministic), one at a time; memory is one
    reader batch. Broken records are counted by reason into `report.rejected` once reading
    ends or stops (`on_bad="strict"`: the first one raises InputError naming file:line);
    without a report (a later pass over inputs a first pass counted) the counts are dropped."""
    lang_fields = tuple(lang_fields)
    units, opts = plan(inputs, lang_fields, batch_size)
    quarantine = Quarantine()
    try:
        for _, docs in read_corpus(units, opts, on_bad=on_bad, quarantine=quarantine):
            cols = {f: docs.column(f).to_pylist() for f in lang_fields if f in docs.schema.names}
            texts = docs.column("text").to_pylist()
            sources = docs.column("source").to_pylist()
            offsets = docs.column("offset").to_pylist()
            for i, text in enumerate(texts):
                lang = next((cols[f][i] for f in lang_fields if f in cols and cols[f][i]), None)
                if lang not in targets:
                    if report is not None:
                        report.non_target[lang or "<none>"] += 1
                    continue
                yield Doc(f"{sources[i]}#{offsets[i]}", lang, text)
    finally:
        if report is not None:
            report.rejected.update(quarantine.by_reason)
