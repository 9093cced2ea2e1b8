"""The one item type every loader produces and every other module consumes.

Benchmarks come in many shapes (lm-eval JSONL, ARC, MMLU CSV, EXAMS); normalising them once,
at load time, keeps swapping, scoring, detection and the n-gram index format-agnostic.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from babelmill.errors import BabelmillError


class BenchmarkError(BabelmillError, ValueError):
    """A benchmark file is malformed; the message names the file, the item and (if known) the line."""


@dataclass(frozen=True)
class MCItem:
    id: str
    lang: str
    question: str
    choices: tuple[str, ...]
    gold: int
    subject: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def answer(self) -> str:
        return self.choices[self.gold]

    def to_json(self) -> dict:
        d = asdict(self)
        d["choices"] = list(self.choices)
        if not d["meta"]:
            d.pop("meta")
        return d

    @classmethod
    def from_json(cls, d: dict) -> MCItem:
        return cls(id=str(d["id"]), lang=d["lang"], question=d["question"], choices=tuple(d["choices"]),
                   gold=int(d["gold"]), subject=d.get("subject", ""), meta=d.get("meta", {}))
