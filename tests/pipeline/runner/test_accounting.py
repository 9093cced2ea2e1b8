"""Every document ends in the output or in rejects with a reason; the manifest adds up."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.run import run_pipeline


def test_every_document_accounted_for(corpus, tmp_path):
    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(
        {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "stages": ["langid"], "engine": {"name": "local"}}
    )
    m = run_pipeline(cfg, quiet=True)
    lay = RunLayout(out)
    kept = sum(pq.read_metadata(p).num_rows for p in lay.output_dir.glob("*.parquet"))
    rejected = pq.read_table(lay.rejects_dir).to_pylist()
    lines = sum(1 for p in corpus.glob("*.jsonl") for line in p.open() if line.strip())
    assert kept + len(rejected) == lines == m["counts"]["docs_in"]
    assert m["counts"]["kept"] == kept
    assert all(r["reason"] and r["stage"] and r["source"] for r in rejected)
    bad = [r for r in rejected if r["reason"] == "bad_json"]
    assert {r["offset"] for r in bad} == {4}  # the malformed line is line 4 of each file
    for lang, v in m["counts"]["by_lang"].items():
        assert v["in"] == v["kept"] + v["dropped"], lang
    on_disk = json.loads(lay.manifest.read_text())
    assert on_disk["counts"] == m["counts"]
    assert {i["source"] for i in on_disk["inputs"]} == {p.name for p in corpus.glob("*.jsonl")}
    assert all(len(i["fingerprint"]) > 8 for i in on_disk["inputs"])
    assert on_disk["versions"]["pyarrow"]


def test_manifest_times_each_phase(corpus, tmp_path):
    """phase_seconds: the map phase alone without global stages; map, global and apply with
    them, within the run's own seconds; a rerun that finds everything done spends ~0 on each."""
    def run(stages, out):
        cfg = PipelineConfig.model_validate({"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
                                             "stages": stages, "engine": {"name": "local"}})
        return run_pipeline(cfg, quiet=True)

    plain = run(["langid"], tmp_path / "plain")
    assert set(plain["phase_seconds"]) == {"map"}
    m = run(["dedup_exact"], tmp_path / "dedup")
    ph = m["phase_seconds"]
    assert set(ph) == {"map", "global", "apply"}
    assert all(v > 0 for v in ph.values()), ph
    assert sum(ph.values()) <= m["seconds"] + 0.01
    again = run(["dedup_exact"], tmp_path / "dedup")
    assert again["units"]["reused_from_earlier_run"] == again["units"]["total"]
    assert again["phase_seconds"]["map"] < ph["map"] and again["phase_seconds"]["apply"] < ph["apply"]
