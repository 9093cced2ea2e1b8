"""The data card renders: a real HTML parser finds the embedded charts, and its tables match
balance.json and the manifest cell for cell."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import pytest

from babelmill.pipeline.balance.config import BalanceConfig
from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.report.datacard import write_datacard
from babelmill.pipeline.runner.run import run_pipeline


class _Page(HTMLParser):
    """Collects <img> sources and the cells of every <table id=...>, row by row."""

    def __init__(self):
        super().__init__()
        self.images: dict[str, str] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self._table = None
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images[a.get("id", "")] = a.get("src", "")
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def balanced_run(tmp_path_factory):
    from tests.conftest import make_corpus

    root = tmp_path_factory.mktemp("card")
    raw = make_corpus(root, files=2, docs_per_lang=3)
    cfg = PipelineConfig.model_validate({
        "name": "card", "input": {"paths": [str(raw)]}, "output": {"dir": str(root / "run")},
        "stages": ["langid", "dedup_exact"], "engine": {"name": "local"},
        "balance": BalanceConfig(policy="unimax", max_epochs=3, seed=1).model_dump()})
    run_pipeline(cfg, quiet=True)
    return root / "run"


def test_html_has_charts_and_tables_matching_balance_json(balanced_run):
    paths = write_datacard(balanced_run)
    page = _Page()
    page.feed(open(paths["html"], encoding="utf-8").read())
    for fig in ("fig-distribution", "fig-drops"):
        src = page.images[fig]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"

    balance = json.loads((balanced_run / "balanced" / "balance.json").read_text())
    manifest = json.loads((balanced_run / "manifest.json").read_text())
    header, *rows = page.tables["languages"]
    col = {name: i for i, name in enumerate(header)}
    by_lang = {r[col["lang"]]: r for r in rows}
    assert set(by_lang) == set(manifest["counts"]["by_lang"])
    for lang, v in balance["languages"].items():
        r = by_lang[lang]
        assert r[col["tokens sampled"]] == f"{v['tokens_after']:,}"
        assert r[col["docs sampled"]] == f"{v['docs_after']:,}"
        assert r[col["weight"]] == f"{v['weight'] * 100:.2f}%"
        assert r[col["epochs"]].split()[0] == f"{v['epochs']:.2f}"
        assert r[col["docs kept"]] == f"{v['docs_before']:,}"
    for lang, v in manifest["counts"]["by_lang"].items():
        assert by_lang[lang][col["docs in"]] == f"{v['in']:,}"
        assert by_lang[lang][col["dropped"]] == f"{v['dropped']:,}"
    # Swahili is not a target language: counted and shown, but not balanced
    assert by_lang["sw"][col["weight"]] == "–"
    reasons = {r[0]: r[1] for r in page.tables["reasons"][1:]}
    assert reasons["dedup_exact:dup_exact"] == str(manifest["counts"]["by_stage"]["dedup_exact"]["reasons"]["dup_exact"])


def test_json_accounts_for_every_document_and_keeps_examples(balanced_run):
    paths = write_datacard(balanced_run)
    card = json.loads(open(paths["json"], encoding="utf-8").read())
    t = card["totals"]
    assert t["docs_in"] == t["docs_kept"] + t["docs_dropped"]
    assert sum(v["docs_in"] for v in card["languages"].values()) == t["docs_in"]
    assert t["tokens_in"] >= t["tokens_kept"] > 0
    examples = card["languages"]["en"]["examples"]["dedup_exact:dup_exact"]
    assert 1 <= len(examples) <= 3 and examples[0]["kept_id"] and examples[0]["text"]
    assert card["figures"] == ["distribution.png", "drops.png"]


def test_card_without_balance_leaves_balance_columns_empty(tmp_path):
    from tests.conftest import make_corpus

    raw = make_corpus(tmp_path, files=1, docs_per_lang=1, bad_lines=False)
    cfg = PipelineConfig.model_validate({"name": "nob", "input": {"paths": [str(raw)]},
                                         "output": {"dir": str(tmp_path / "run")}, "stages": ["langid"],
                                         "engine": {"name": "local"}})
    run_pipeline(cfg, quiet=True)
    card = json.loads(open(write_datacard(tmp_path / "run")["json"]).read())
    assert card["balance"] is None and card["languages"]["en"]["weight"] is None
    assert card["totals"]["tokens_kept"] > 0


def test_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        write_datacard(tmp_path)


def test_model_scores_section_has_histograms_and_examples(tmp_path):
    import random

    from babelmill.pipeline.quality_models.cli import train_lms
    from tests.pipeline.quality_models.helpers import good_en, good_zh, junk_en, tiny_classifiers

    rng = random.Random(1)
    rows = [{"id": f"en{i}", "text": (good_en if i % 3 else junk_en)(rng), "lang": "en"} for i in range(15)]
    rows += [{"id": f"zh{i}", "text": good_zh(rng), "lang": "zh"} for i in range(6)]
    rows += [{"id": f"fr{i}", "text": "Le comité a publié son rapport.", "lang": "fr"} for i in range(2)]
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tiny_classifiers(tmp_path / "clf", n=20)
    train_lms([str(raw)], tmp_path / "lm", order=2, langs=["en", "zh"])
    cfg = PipelineConfig.model_validate({
        "name": "scores", "input": {"paths": [str(raw)], "extra_fields": ["lang"]},
        "output": {"dir": str(tmp_path / "run")}, "engine": {"name": "local"},
        "stages": [{"name": "perplexity", "params": {"models": str(tmp_path / "lm"), "score_only": True,
                                                     "languages": ["en", "zh"]}},
                   {"name": "quality_classifier", "params": {"models": str(tmp_path / "clf"), "score_only": True,
                                                             "languages": ["en", "zh"]}}]})
    run_pipeline(cfg, quiet=True)
    paths = write_datacard(tmp_path / "run")
    card = json.loads(open(paths["json"], encoding="utf-8").read())
    assert card["figures"] == ["distribution.png", "drops.png", "scores_perplexity.png", "scores_quality_score.png"]
    qs = card["model_scores"]["quality_score"]
    assert qs["score_only"] is True and qs["stage"] == "quality_classifier"
    en = qs["languages"]["en"]
    assert en["scored"] == 15 and en["null"] == 0 and sum(en["hist"]) == 15
    ex = {e["position"]: e for e in en["examples"]}
    assert ex["bottom"]["score"] <= ex["middle"]["score"] <= ex["top"]["score"]
    assert ex["bottom"]["text"] and ex["top"]["text"]
    assert ex["bottom"]["id"] in {f"en{i}" for i in range(0, 15, 3)}  # a junk document scores lowest
    assert qs["languages"]["fr"] == {"scored": 0, "null": 2, "dropped": {}}
    page = _Page()
    page.feed(open(paths["html"], encoding="utf-8").read())
    for fig in ("fig-scores-quality_score", "fig-scores-perplexity"):
        assert base64.b64decode(page.images[fig].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    header, *trs = page.tables["scores-perplexity"]
    assert header[:3] == ["lang", "scored", "null"]
    assert {r[0]: r[1] for r in trs}["en"] == "15"


def test_datacard_uses_the_registry_the_run_recorded(tmp_path, monkeypatch):
    """Language names and target flags come from the registry in the run's manifest (here set by
    $BABELMILL_LANGUAGES at run time), not from the environment of the process writing the card."""
    from babelmill.pipeline.report.datacard import build_datacard
    from tests.pipeline.custom_registry import write_registry

    raw = tmp_path / "raw"
    raw.mkdir()
    docs = [{"id": f"{lang}{i}", "text": f"document {i} of the language {lang}", "lang": lang}
            for lang in ("en", "km") for i in range(3)]
    (raw / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    reg = write_registry(tmp_path / "langs.yaml", drop=("km",), en={"name": "English (ours)"})
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(reg))
    run_pipeline(PipelineConfig.model_validate({
        "input": {"paths": [str(raw)], "extra_fields": ["lang"]}, "output": {"dir": str(tmp_path / "run")},
        "engine": {"name": "local"}}), quiet=True)
    monkeypatch.delenv("BABELMILL_LANGUAGES")
    card, _ = build_datacard(tmp_path / "run")
    langs = card["languages"]
    assert langs["en"]["name"] == "English (ours)" and langs["en"]["target"]
    assert langs["km"]["target"] is False and langs["km"]["name"] is None
