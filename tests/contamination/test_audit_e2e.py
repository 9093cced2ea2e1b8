"""Proof that the audit works: tiny GPT-2s trained on CPU on text we wrote.

- clean:  facts about countries that are not in the benchmark (it learns *what kind* of answer a
          question wants, not the benchmark's answers);
- inj_en: the same plus the benchmark's English test items (question + correct answer), 12 epochs;
- inj_fr: the same plus the French translation of those items (aligned by id), 12 epochs.
The choice-swap audit must flag both contaminated models (in the language they saw) and not the
clean one; the n-gram audit against the English benchmark must find the English injection in the
training corpus but not the French one.
"""

import base64
import json
import re

from babelmill.cli import main
from babelmill.contamination.benchmarks.loaders import load_benchmark
from babelmill.contamination.ngram import build_index, scan_corpus
from babelmill.contamination.swap import generalize
from demo.audit import demo

REQUIRED = {"n", "acc_original", "acc_generalized", "delta", "ci_low", "ci_high", "verdict"}


def test_choice_swap_flags_contaminated_models_not_the_clean_one(tiny_models, synth, tmp_path):
    out = tmp_path / "audit"
    summary = demo(tiny_models, [synth["bench_dir"]], out,
                   corpora={k: [v] for k, v in synth["corpus_paths"].items()}, seed=0)
    rows = {m: summary[m]["benchmarks"]["synth_mc"] for m in tiny_models}
    for m, b in rows.items():
        for lang, r in b["languages"].items():
            assert REQUIRED <= set(r) and r["n"] == 40, (m, lang)
            assert r["ci_low"] <= r["delta"] <= r["ci_high"]
            print(f"{m} {lang}: acc {r['acc_original']:.3f} -> {r['acc_generalized']:.3f} "
                  f"delta {r['delta']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] {r['verdict']}")

    clean, en, fr = rows["clean"], rows["inj_en"], rows["inj_fr"]
    # the clean model profits from the easier generalized version, in both languages
    assert {lang: r["verdict"] for lang, r in clean["languages"].items()} == {"en": "clean", "fr": "clean"}
    assert clean["verdict"] == "clean" and clean["cross_lingual"]["memorised_language"] is None
    # each contaminated model is flagged in the language it saw, and the audit names that language
    assert en["languages"]["en"]["verdict"] == "contaminated" and en["verdict"] == "contaminated"
    assert en["cross_lingual"]["memorised_language"] == "en"
    assert fr["languages"]["fr"]["verdict"] == "contaminated" and fr["verdict"] == "contaminated"
    assert fr["cross_lingual"]["memorised_language"] == "fr"
    # memorising the French items leaks into the English version: it gains less there than a clean model
    assert fr["languages"]["en"]["delta"] < clean["languages"]["en"]["delta"]

    # n-gram overlap (benchmark: both languages) over each model's own training corpus
    ov = {m: summary[m]["overlap"]["benchmarks"]["synth_mc"] for m in tiny_models}
    assert ov["clean"]["en"]["items_overlapping"] == 0 and ov["clean"]["fr"]["items_overlapping"] == 0
    assert ov["inj_en"]["en"]["items_overlapping"] == 40 and ov["inj_en"]["fr"]["items_overlapping"] == 0
    assert ov["inj_fr"]["en"]["items_overlapping"] == 0

    # reports: JSON per model, HTML with embedded charts, a summary
    for m in tiny_models:
        assert json.loads((out / f"{m}.json").read_text())["benchmarks"]["synth_mc"]["verdict"] == rows[m]["verdict"]
        html = (out / f"{m}.html").read_text()
        pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
        assert len(pngs) == 2 and all(base64.b64decode(p)[:4] == b"\x89PNG" for p in pngs)
    assert "inj_fr" in (out / "summary.html").read_text()


def test_ngram_audit_sees_same_language_injection_not_translation(synth):
    """Text overlap with the original (English) benchmark cannot see the French injection."""
    english = [it for it in synth["items"] if it.lang == "en"]
    idx = build_index(english, "synth_mc")
    found = {name: scan_corpus([p], idx)["benchmarks"]["synth_mc"]["en"] for name, p in synth["corpus_paths"].items()}
    assert found["inj_en"]["items_overlapping"] == len(english) and found["inj_en"]["docs_overlapping"] > 0
    assert found["inj_fr"]["items_overlapping"] == 0 and found["clean"]["items_overlapping"] == 0


def test_cli_contract(tiny_models, synth, tmp_path, capsys):
    out_json, out_html = tmp_path / "r.json", tmp_path / "r.html"
    assert main(["audit", "--model", str(tiny_models["inj_en"]), "--benchmark", str(synth["bench_dir"] / "en.jsonl"),
                 "--benchmark", str(synth["bench_dir"] / "fr.jsonl"), "--json", str(out_json),
                 "--html", str(out_html), "--corpus", str(synth["corpus_paths"]["inj_en"]), "--seed", "7",
                 "--limit", "10"]) == 0
    res = json.loads(out_json.read_text())
    assert res["seed"] == 7 and set(res["benchmarks"]["synth_mc"]["languages"]) == {"en", "fr"}
    assert res["benchmarks"]["synth_mc"]["languages"]["en"]["n"] == 10
    assert REQUIRED <= set(res["benchmarks"]["synth_mc"]["languages"]["en"])
    assert "synth_mc en:" in capsys.readouterr().out
    # the generalized benchmark is saved next to the JSON and is exactly what generalize() builds
    saved = load_benchmark(tmp_path / "r.generalized" / "synth_mc")
    expected = generalize(load_benchmark(synth["bench_dir"]).subset(limit=10).items, seed=7)
    assert sorted(saved.items, key=lambda i: (i.lang, i.id)) == sorted(expected, key=lambda i: (i.lang, i.id))
    # bad input: exit code 2 and a message naming the file and line
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q", "choices": ["x", "y"], "answer": 5}\n')
    assert main(["audit", "--model", str(tiny_models["clean"]), "--benchmark", str(bad), "--json", str(out_json)]) == 2
    assert f"{bad}:1: item 'a'" in capsys.readouterr().err
    # neither a Hugging Face model dir nor a megatron checkpoint: one line, exit code 2 too
    (tmp_path / "empty").mkdir()
    good = str(synth["bench_dir"] / "en.jsonl")
    assert main(["audit", "--model", str(tmp_path / "empty"), "--benchmark", good, "--json", str(out_json)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"babelmill: error: {tmp_path / 'empty'}: neither") and err.count("\n") == 1, err


def test_demo_entry_point(tiny_models, synth, tmp_path, capsys):
    from demo.audit import main

    rc = main(["--model", f"clean={tiny_models['clean']}", "--benchmark", str(synth["bench_dir"]), "--limit", "20",
               "--corpus", f"clean={synth['corpus_paths']['clean']}", "--out", str(tmp_path / "demo")])
    assert rc == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["clean"]["benchmarks"]["synth_mc"]["languages"]["en"]["n"] == 20
    assert summary["clean"]["overlap"]["docs_scanned"] == len(synth["corpora"]["clean"])
    assert "clean synth_mc en:" in capsys.readouterr().out
