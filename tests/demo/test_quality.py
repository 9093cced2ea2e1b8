"""The demo's quality models, on the tiny-declaration fixture: training sets from held-out
articles only, every junk kind, a model of each kind per language, reuse on a rerun."""

from __future__ import annotations

import json
import random

import yaml

from demo.quality import JUNK_KINDS, build_quality_models, junk_document
from tests.demo.test_corpus import _write_fixture


def test_junk_kinds_use_the_language_units():
    rng = random.Random(0)
    paras = ["Everyone has the right to life, liberty and security of person.", "No one shall be held in slavery."]
    for kind in JUNK_KINDS:
        doc = junk_document(kind, paras, True, rng)
        assert doc and doc not in paras
    salad = junk_document("salad", paras, True, random.Random(1))
    assert sorted(salad.split()) == sorted(" ".join(paras).split())
    zh = junk_document("salad", ["人人有权享有生命、自由和人身安全。"], False, random.Random(2))
    assert sorted(zh) == sorted("人人有权享有生命、自由和人身安全。") and " " not in zh


def test_models_from_held_out_articles_and_reuse(tmp_path):
    decl, cfg = _write_fixture(tmp_path / "fixture")
    doc = yaml.safe_load(cfg.read_text())
    doc["corpus"]["heldout_articles"] = list(range(16, 31))
    cfg.write_text(yaml.safe_dump(doc))
    out = tmp_path / "qm"
    s = build_quality_models(out, config=cfg, declaration_dir=decl)
    assert not s["reused"] and s["articles"] == list(range(16, 28))  # 28-30: the tokenizer's parallel set
    assert s["classifiers"] == s["kenlm_models"] == 3
    for lang in ("en", "ar", "zh"):
        assert (out / "classifier" / f"{lang}.bin").is_file() and (out / "kenlm" / f"{lang}.arpa").is_file()
    assert json.loads((out / "kenlm" / "zh.lm.json").read_text())["tokens"] == "chars"
    pos = [json.loads(x) for x in (out / "train" / "positive.jsonl").read_text().splitlines()]
    neg = [json.loads(x) for x in (out / "train" / "negative.jsonl").read_text().splitlines()]
    assert all("Article 1 " not in r["text"] and "Article 28" not in r["text"] for r in pos)
    assert {r["kind"] for r in neg} == set(JUNK_KINDS) and len(pos) == len(neg)
    again = build_quality_models(out, config=cfg, declaration_dir=decl)
    assert again["reused"] and again["held_out"] == s["held_out"]
