"""The decontamination stage drops documents containing benchmark items, through the runner."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline

ITEM = {"id": "q1", "lang": "en", "question": "Which river flows through the ancient city of Valdoria in the north?",
        "choices": ["The Silver river of the northern plains", "The Amber", "The Grey", "The Blue"], "gold": 0}


def test_documents_with_benchmark_items_are_dropped_with_the_item_id(tmp_path):
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps(ITEM) + "\n")
    raw = tmp_path / "raw"
    raw.mkdir()
    docs = [
        {"id": "leak", "text": "Quiz. Which river flows through the ancient city of Valdoria in the north? Answer below."},
        {"id": "ok", "text": "The city council met on Tuesday to discuss the budget for the coming year in detail."},
    ]
    (raw / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    cfg = PipelineConfig.model_validate({
        "input": {"paths": [str(raw)]}, "output": {"dir": str(tmp_path / "run")}, "engine": {"name": "local"},
        "stages": [{"name": "decontaminate", "params": {"benchmarks": [str(bench)]}}]})
    m = run_pipeline(cfg, quiet=True)
    assert m["counts"]["by_stage"]["decontaminate"]["reasons"] == {"contaminated": 1}
    rej = pq.read_table(tmp_path / "run" / "rejects").to_pylist()
    assert [(r["id"], r["reason"]) for r in rej] == [("leak", "contaminated")]
    assert "q1" in rej[0]["detail"]
    kept = pq.read_table(tmp_path / "run" / "output").to_pylist()
    assert [r["id"] for r in kept] == ["ok"] and kept[0]["contam_ngrams"] == 0


def test_the_run_registry_reaches_the_decontaminate_stage(tmp_path, monkeypatch):
    """The stage builds its n-gram index with the run's registry (`languages:`, else
    $BABELMILL_LANGUAGES), as every other stage: with English marked unspaced there, English items
    are indexed by characters, so a copy with its spaces removed is found; with the default
    registry (word n-grams) it is not."""
    from tests.pipeline.custom_registry import write_registry

    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps(ITEM) + "\n")
    raw = tmp_path / "raw"
    raw.mkdir()
    squashed = "Whichriverflowsthroughtheancientcityof Valdoriainthenorth"
    (raw / "d.jsonl").write_text(json.dumps({"id": "leak", "text": f"Quiz. {squashed}? Answer below."}) + "\n")
    unspaced = write_registry(tmp_path / "langs.yaml", en={"space_delimited": False})
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(tmp_path / "nowhere.yaml"))  # the config's wins

    def run(name, **extra):
        cfg = PipelineConfig.model_validate({
            "input": {"paths": [str(raw)]}, "output": {"dir": str(tmp_path / name)}, "engine": {"name": "local"},
            "stages": [{"name": "decontaminate", "params": {"benchmarks": [str(bench)]}}], **extra})
        return run_pipeline(cfg, quiet=True)["counts"]["by_stage"]["decontaminate"]["reasons"]

    assert run("custom", languages=str(unspaced)) == {"contaminated": 1}
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(unspaced))
    assert run("from_env") == {"contaminated": 1}
    monkeypatch.delenv("BABELMILL_LANGUAGES")
    assert run("default") == {}
