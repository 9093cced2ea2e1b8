"""Balanced vs unbalanced vs unigram, at the same vocabulary size on the same training data.

    parity          parity-aware BPE (train_parity.py), temperature T, no pilot: the default of
                    `babelmill tokenizer train`, with its bundled dev set (UDHR articles 4, 9, 14,
                    19, 24; not the parallel set given here, which is the test)
    bpe_balanced    byte-level BPE, temperature T + parity correction (the previous default)
    bpe_natural     byte-level BPE, natural language shares (T=1, no correction)
    unigram         SentencePiece unigram on the balanced sample (converted to tokenizer.json)

`compare` trains (or reuses, see train.train) all three under out_dir/<name>/, evaluates them on
the parallel set, and reports whether balancing did its job: lower worst-language parity and
lower spread (std) of parity than natural shares. The demo's step on its corpus, with the
table printed and the HTML report written, is demo/tokenizer.py.
"""

from __future__ import annotations

from pathlib import Path

from babelmill.tokenizer import train as train_mod
from babelmill.tokenizer.evaluate import evaluate, write_json

BALANCED, NATURAL, UNIGRAM, PARITY = "bpe_balanced", "bpe_natural", "unigram", "parity"


def variants(temperature: float, cost_power: float) -> dict[str, dict]:
    return {
        PARITY: {"kind": "parity", "temperature": temperature, "cost_power": 0.0},
        BALANCED: {"kind": "bpe", "temperature": temperature, "cost_power": cost_power},
        NATURAL: {"kind": "bpe", "temperature": 1.0, "cost_power": 0.0},
        UNIGRAM: {"kind": "unigram", "temperature": temperature, "cost_power": cost_power},
    }


def verdict(results: dict[str, dict]) -> dict:
    b, n = results[BALANCED]["summary"], results[NATURAL]["summary"]
    return {
        "balanced_worst_parity": b["worst_parity"],
        "natural_worst_parity": n["worst_parity"],
        "balanced_std_parity": b["std_parity"],
        "natural_std_parity": n["std_parity"],
        "lower_worst_parity": b["worst_parity"] < n["worst_parity"],
        "lower_std_parity": b["std_parity"] < n["std_parity"],
    }


def compare(
    inputs: list[str],
    parallel_dir: str | Path,
    out_dir: str | Path,
    vocab_size: int = train_mod.DEFAULT_VOCAB,
    temperature: float = train_mod.DEFAULT_TEMPERATURE,
    cost_power: float = train_mod.DEFAULT_COST_POWER,
    seed: int = 0,
    names: list[str] | None = None,
    languages: str | None = None,
    **train_kw,
) -> dict:
    """Train/reuse the variants and evaluate them; writes out_dir/compare.json.
    Returns {"results": {name: evaluation}, "train": {name: meta summary}, "verdict": ...}."""
    out = Path(out_dir)
    todo = {k: v for k, v in variants(temperature, cost_power).items() if names is None or k in names}
    results, trained = {}, {}
    for name, spec in todo.items():
        meta = train_mod.train(inputs, out / name, vocab_size=vocab_size, seed=seed, languages=languages,
                               **spec, **train_kw)
        trained[name] = {"reused": bool(meta.get("reused")), "seconds": meta["seconds"],
                         "peak_rss_mb": meta["peak_rss_mb"], "sample_total_chars": meta["sample_total_chars"],
                         **spec}
        results[name] = evaluate(out / name / "tokenizer.json", parallel_dir, languages=languages, name=name)
    report = {"vocab_size": vocab_size, "seed": seed, "train": trained, "results": results}
    if BALANCED in results and NATURAL in results:
        report["verdict"] = verdict(results)
    write_json(report, out / "compare.json")
    return report
