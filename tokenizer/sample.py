"""The tokenizer's training sample: language shares re-weighted by a temperature.

Why a separate temperature from the corpus balancing: the vocabulary is a fixed budget shared by
all scripts, and a language's share of merges follows its share of the sample. With natural
shares (T=1) the big languages take the vocabulary and low-resource scripts are left with
near-character tokens, i.e. their users pay more tokens for the same content. Sampling with

    q_l ∝ p_l ** (1/T),   p_l = size_l / Σ size

flattens the shares (T→∞ is uniform). A language's size p_l is measured in *content*, not
characters or bytes: by default the zlib-compressed UTF-8 size of its documents. Characters
undercount dense scripts (the same UDHR article is 0.28x the characters in Chinese as in
English) and bytes overcount 3-byte scripts (3.8x for Myanmar); compressed size stays within
1.0-1.7x of English on the demo's parallel articles. "chars" and "docs" are available too.

Parity correction (cost_power β > 0): equal content is not enough. A script that the
vocabulary serves badly needs *more* of the sample to earn merges, so a pilot tokenizer is
trained on the temperature sample, each language's cost κ_l = pilot tokens per compressed byte
is measured on its own training documents, and the final shares are

    q_l ∝ p_l ** (1/T) * (κ_l / mean κ) ** β

(β = 0: plain temperature sampling). The pilot is small (vocab/8): a large pilot memorizes
repeated text in every language and its costs flatten towards 1. T fixes *how much data* a
language has; the correction fixes *how hard its script is* for a byte-level vocabulary (on a
corpus already balanced in content, T alone cannot lower the worst parity; the correction can).
"""

from __future__ import annotations

import hashlib
import math
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from babelmill.tokenizer.corpus import DEFAULT_LANG_FIELDS, ReadReport, TokenizerError, iter_docs


@dataclass
class CorpusStats:
    docs: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)
    zbytes: Counter = field(default_factory=Counter)  # zlib-compressed UTF-8 bytes
    read: ReadReport = field(default_factory=ReadReport)

    @property
    def total_chars(self) -> int:
        return sum(self.chars.values())

    def sizes(self, unit: str) -> dict[str, int]:
        if unit not in SIZE_UNITS:
            raise ValueError(f"size unit must be one of {SIZE_UNITS}, got {unit!r}")
        return dict({"compressed": self.zbytes, "chars": self.chars, "docs": self.docs}[unit])


SIZE_UNITS = ("compressed", "chars", "docs")


def compressed_size(text: str) -> int:
    """Content proxy: zlib level 6 of the UTF-8 text minus the fixed 2+4 header/checksum bytes."""
    return max(1, len(zlib.compress(text.encode("utf-8"), 6)) - 6)


def scan(inputs: list[str], targets: set[str], lang_fields=DEFAULT_LANG_FIELDS) -> CorpusStats:
    """Pass 1: documents and characters per target language."""
    st = CorpusStats()
    for d in iter_docs(inputs, targets, lang_fields, report=st.read):
        st.docs[d.lang] += 1
        st.chars[d.lang] += len(d.text)
        st.zbytes[d.lang] += compressed_size(d.text)
    if not st.chars:
        raise TokenizerError(
            f"{', '.join(map(str, inputs))}: no documents in a target language "
            f"(looked for a language in fields {list(lang_fields)}; skipped: {dict(st.read.non_target)})"
        )
    return st


def temperature_shares(sizes: dict[str, int], temperature: float) -> dict[str, float]:
    """q_l ∝ p_l^(1/T) over languages with data; T=1 keeps natural shares."""
    if temperature <= 0:
        raise TokenizerError(f"temperature must be > 0, got {temperature}")
    total = sum(sizes.values())
    w = {lang: (n / total) ** (1.0 / temperature) for lang, n in sizes.items() if n > 0}
    z = sum(w.values())
    return {lang: v / z for lang, v in sorted(w.items())}


@dataclass
class SamplePlan:
    temperature: float
    seed: int
    size_unit: str
    sample_size: int  # in size_unit
    max_repeat: float
    shares: dict[str, float]  # target share of the sample per language (in size_unit)
    rates: dict[str, float]  # expected copies per document per language
    cost: dict[str, float] | None = None  # relative pilot cost κ_l / mean κ (parity correction)
    cost_power: float = 0.0

    def to_dict(self) -> dict:
        return {
            "temperature": self.temperature,
            "seed": self.seed,
            "size_unit": self.size_unit,
            "sample_size": self.sample_size,
            "max_repeat": self.max_repeat,
            "cost_power": self.cost_power,
            "cost": {k: round(v, 4) for k, v in self.cost.items()} if self.cost else None,
            "shares": {k: round(v, 6) for k, v in self.shares.items()},
            "rates": {k: round(v, 6) for k, v in self.rates.items()},
        }


def plan_sample(
    stats: CorpusStats,
    temperature: float,
    seed: int = 0,
    sample_size: int | None = None,
    max_sample_chars: int = 200_000_000,
    max_repeat: float = 8.0,
    size_unit: str = "compressed",
    cost: dict[str, float] | None = None,
    cost_power: float = 0.0,
) -> SamplePlan:
    """Per-language sampling rates. `sample_size` (in `size_unit`) defaults to the corpus size,
    so T only redistributes the same volume between languages; the expected sample is capped
    at `max_sample_chars` characters (the memory bound of training)."""
    sizes = stats.sizes(size_unit)
    total = sum(sizes.values())
    budget = int(sample_size or total)
    shares = temperature_shares(sizes, temperature)
    if cost and cost_power:
        shares = {lang: q * cost.get(lang, 1.0) ** cost_power for lang, q in shares.items()}
        z = sum(shares.values())
        shares = {lang: q / z for lang, q in shares.items()}
    rates = {lang: min(max_repeat, q * budget / sizes[lang]) for lang, q in shares.items()}
    expected_chars = sum(rates[lang] * stats.chars[lang] for lang in rates)
    if expected_chars > max_sample_chars:
        scale = max_sample_chars / expected_chars
        rates = {lang: r * scale for lang, r in rates.items()}
    return SamplePlan(temperature, seed, size_unit, budget, max_repeat, shares, rates, cost, cost_power)


def measure_cost(inputs: list[str], tokenizer, stats: CorpusStats, lang_fields=DEFAULT_LANG_FIELDS,
                 max_chars_per_lang: int = 2_000_000, seed: int = 0) -> dict[str, float]:
    """Relative cost κ_l / mean κ, κ_l = tokens per compressed byte of the language's documents
    under `tokenizer` (a pilot). At most ~`max_chars_per_lang` characters are encoded per
    language (a deterministic hash subset), so this pass stays cheap on a large corpus."""
    tokens: Counter = Counter()
    zbytes: Counter = Counter()
    keep = {lang: min(1.0, max_chars_per_lang / n) for lang, n in stats.chars.items() if n}
    pending: list[tuple[str, str]] = []

    def flush():
        enc = tokenizer.encode_batch([t for _, t in pending], add_special_tokens=False)
        for (lang, text), e in zip(pending, enc, strict=True):
            tokens[lang] += len(e.ids)
            zbytes[lang] += compressed_size(text)
        pending.clear()

    for d in iter_docs(inputs, set(keep), lang_fields):
        if _uniform(seed + 1, d.key) < keep[d.lang]:
            pending.append((d.lang, d.text))
            if len(pending) >= 256:
                flush()
    if pending:
        flush()
    kappa = {lang: tokens[lang] / zbytes[lang] for lang in zbytes if zbytes[lang]}
    mean = sum(kappa.values()) / len(kappa)
    return {lang: k / mean for lang, k in sorted(kappa.items())}


def _uniform(seed: int, key: str) -> float:
    h = hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") / 2**64


def copies(rate: float, seed: int, key: str) -> int:
    base = math.floor(rate)
    return base + (1 if _uniform(seed, key) < rate - base else 0)


@dataclass
class SampleCounts:
    """What was actually drawn (the plan is an expectation)."""

    docs: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {lang: {"docs": self.docs[lang], "chars": self.chars[lang]} for lang in sorted(self.docs)}


def iter_sample(
    inputs: list[str],
    plan: SamplePlan,
    lang_fields=DEFAULT_LANG_FIELDS,
    counts: SampleCounts | None = None,
    batch_docs: int = 256,
    normalize=None,
) -> Iterator[list[str]]:
    """Pass 2: batches of sampled document texts (the shape `train_from_iterator` wants).
    Memory: one reader batch plus one output batch."""
    batch: list[str] = []
    for _lang, text, n in iter_sample_docs(inputs, plan, lang_fields, counts, normalize):
        batch.extend([text] * n)
        if len(batch) >= batch_docs:
            yield batch
            batch = []
    if batch:
        yield batch


def iter_sample_docs(
    inputs: list[str],
    plan: SamplePlan,
    lang_fields=DEFAULT_LANG_FIELDS,
    counts: SampleCounts | None = None,
    normalize=None,
) -> Iterator[tuple[str, str, int]]:
    """Pass 2 for trainers that need the language: (lang, text, copies) per sampled document
    (the same draw as iter_sample; a document drawn n times is yielded once with n)."""
    for d in iter_docs(inputs, set(plan.rates), lang_fields):
        n = copies(plan.rates[d.lang], plan.seed, d.key)
        if not n:
            continue
        text = normalize(d.text) if normalize else d.text
        if counts is not None:
            counts.docs[d.lang] += n
            counts.chars[d.lang] += n * len(text)
        yield d.lang, text, n
