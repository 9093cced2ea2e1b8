from babelmill.contamination.benchmarks.loaders import load_benchmark
from babelmill.contamination.items import MCItem
from babelmill.contamination.swap import generalize, save_generalized


def _items(n=30, k=4, langs=("en", "fr"), subjects=("a", "b", "c")):
    out = []
    for lang in langs:
        for i in range(n):
            choices = tuple(f"{lang} answer {i} opt {j}" for j in range(k))
            out.append(MCItem(str(i), lang, f"{lang} question {i}", choices, i % k, subjects[i % len(subjects)]))
    return out


def test_generalized_properties():
    items = _items()
    answers = {(it.lang, it.id): it.answer for it in items}
    gen = generalize(items, seed=3)
    assert [(g.id, g.lang) for g in gen] == [(it.id, it.lang) for it in items]
    for it, g in zip(items, gen, strict=True):
        assert g.gold == it.gold and len(g.choices) == len(it.choices) and g.question == it.question
        assert g.answer == it.answer
        assert len(set(g.choices)) == len(g.choices)
        own_lang = {a for (lang, _), a in answers.items() if lang == it.lang}
        for j, c in enumerate(g.choices):
            if j != g.gold:
                assert c in own_lang and c != it.answer  # another item's correct answer, same language
        assert it.id not in g.meta["donors"]


def test_seeded_and_parallel_across_translations():
    items = _items()
    a, b, c = generalize(items, seed=1), generalize(items, seed=1), generalize(items, seed=2)
    assert a == b and a != c
    donors = {(g.lang, g.id): g.meta["donors"] for g in a}
    assert all(donors[("en", str(i))] == donors[("fr", str(i))] for i in range(30))


def test_same_subject():
    items = _items(langs=("en",))
    subj = {it.answer: it.subject for it in items}
    for g in generalize(items, seed=0, same_subject=True):
        assert all(subj[c] == g.subject for c in g.choices)


def test_saved_alongside_and_reloadable(tmp_path):
    gen = generalize(_items(), seed=0)
    files = save_generalized(gen, tmp_path, "bench")
    assert sorted(p.name for p in files) == ["en.jsonl", "fr.jsonl"]
    back = load_benchmark(tmp_path / "bench")
    assert sorted(back.items, key=lambda x: (x.lang, x.id)) == sorted(gen, key=lambda x: (x.lang, x.id))
