"""The shipped demo benchmark: loadable, aligned across languages, swappable."""

from pathlib import Path

from babelmill.contamination.benchmarks.loaders import load_benchmark
from babelmill.contamination.swap import generalize
from bench.make_udhr_benchmark import OUT, hybrids, split_statement


def test_shipped_udhr_benchmark_is_aligned():
    b = load_benchmark(OUT)
    assert b.name == "udhr_mc" and len(b.languages) >= 8 and {"en", "zh", "th"} <= set(b.languages)
    by = b.by_lang()
    ids = {lang: [it.id for it in v] for lang, v in by.items()}
    assert all(v == ids["en"] for v in ids.values()) and 40 <= len(ids["en"]) <= 80
    gold = {lang: [it.gold for it in v] for lang, v in by.items()}
    assert all(v == gold["en"] for v in gold.values())
    for it in b.items:
        assert len(set(it.choices)) == 4
    gen = generalize(b.items, seed=0)
    assert len(gen) == len(b.items)


def test_split_and_hybrids():
    import random

    prefix, ending = split_statement("Everyone has the right to life, liberty and security of person.", True)
    assert prefix == "Everyone has the right to" and ending == "life, liberty and security of person."
    wrong = hybrids(ending, ["to freedom of movement and residence within the borders", "equal pay for equal work here"],
                    True, random.Random(0), k=2)
    assert len(wrong) == 2 and all(w.startswith("life,") and w != ending for w in wrong)
    assert Path(OUT).is_dir()
