"""The audit names the language of a benchmark file that gives none: identified from its items by
the LID stage (majority over the questions), or as given with --benchmark-lang / --lang."""

from __future__ import annotations

import json

from babelmill.contamination.audit import identify_language, run_audit
from babelmill.contamination.items import MCItem
from tests.contamination.test_scoring import CharBackend

EN = ["What is the capital city of the country where the river flows north?",
      "Which animal sleeps during the day and hunts at night in the forest?",
      "How many legs does a spider have when it is fully grown?",
      "Which season comes after the long and cold winter months?",
      "What do people usually drink in the morning to wake up?",
      "Which planet is the closest one to the sun in our solar system?"]
FR = ["Quelle est la capitale du pays où la rivière coule vers le nord ?",
      "Quel animal dort pendant la journée et chasse la nuit dans la forêt ?",
      "Combien de pattes une araignée adulte possède-t-elle ?",
      "Quelle saison vient après les longs mois froids de l'hiver ?",
      "Que boivent les gens le matin pour se réveiller ?",
      "Quelle planète est la plus proche du soleil dans notre système solaire ?"]


def _write(path, questions):
    rows = [{"question": q, "choices": ["one", "two", "three", "four"], "answer": i % 4}
            for i, q in enumerate(questions)]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_identify_language_majority():
    items = [MCItem(str(i), "und", q, ("a", "b"), 0) for i, q in enumerate(FR)]
    got = identify_language(items)
    assert got["lang"] == "fr" and got["n"] == len(FR) and got["share"] >= 0.5
    assert identify_language([])["lang"] == "und"


def test_audit_reports_identified_or_given_language(tmp_path, capsys):
    en = _write(tmp_path / "quiz_a.jsonl", EN)
    fr = _write(tmp_path / "quiz_b.jsonl", FR)
    res = run_audit(None, [str(en), str(fr)], backend=CharBackend(), json_out=tmp_path / "a.json")
    assert sorted(res["benchmarks"]["quiz_a"]["languages"]) == ["en"]
    assert sorted(res["benchmarks"]["quiz_b"]["languages"]) == ["fr"]
    li = res["benchmarks"]["quiz_b"]["language_identification"]
    assert li["lang"] == "fr" and li["method"] == "langid majority"
    assert "und" not in json.dumps({k: b["languages"] for k, b in res["benchmarks"].items()})

    given = run_audit(None, [str(en)], backend=CharBackend(), benchmark_lang="de")
    assert sorted(given["benchmarks"]["quiz_a"]["languages"]) == ["de"]
    assert given["benchmarks"]["quiz_a"]["language_identification"]["method"].startswith("given")

    from babelmill.contamination.report import render_html

    assert "Language: <b>fr</b>" in render_html(res)
