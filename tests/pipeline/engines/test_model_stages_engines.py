"""The perplexity and quality_classifier stages give identical results on the in-process, Ray
Data and Beam engines (models set up once per worker from the same directories)."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.run import run_pipeline
from tests.pipeline.quality_models.helpers import good_en, good_zh, junk_en, junk_zh, tiny_classifiers


def _read_all(d):
    tables = [pq.read_table(p) for p in sorted(d.glob("*.parquet"))]
    return pa.concat_tables(tables).sort_by("id") if tables else None


@pytest.mark.ray
@pytest.mark.beam
def test_model_stages_agree_across_engines(tmp_path, ray_session):
    from babelmill.pipeline.quality_models.cli import train_lms

    rng = random.Random(11)
    rows = []
    for i in range(12):
        rows += [{"id": f"en-g{i}", "text": good_en(rng), "lang": "en"}, {"id": f"en-j{i}", "text": junk_en(rng), "lang": "en"},
                 {"id": f"zh-g{i}", "text": good_zh(rng), "lang": "zh"}, {"id": f"zh-j{i}", "text": junk_zh(rng), "lang": "zh"},
                 {"id": f"fr-{i}", "text": "Le comité a publié son rapport annuel.", "lang": "fr"}]
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):  # three work units
        (raw / f"part-{k}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[k::3]),
                                             encoding="utf-8")
    clf = tmp_path / "clf"
    tiny_classifiers(clf, n=30)
    ref = tmp_path / "ref.jsonl"
    ref.write_text("".join(json.dumps({"text": t, "lang": lang}, ensure_ascii=False) + "\n"
                           for t, lang in [(good_en(rng), "en") for _ in range(30)] + [(good_zh(rng), "zh") for _ in range(30)]),
                   encoding="utf-8")
    train_lms([str(ref)], tmp_path / "lm", order=3)
    qcfg = tmp_path / "quality.yaml"
    qcfg.write_text(yaml.safe_dump({"languages": {"en": {"min_quality_score": 0.5, "perplexity_head": 50.0,
                                                          "perplexity_tail": 200.0},
                                                   "zh": {"max_perplexity": 400.0}}}), encoding="utf-8")
    results = {}
    for engine in ("local", "ray", "beam"):
        out = tmp_path / engine
        cfg = PipelineConfig.model_validate({
            "name": f"models-{engine}", "input": {"paths": [str(raw)], "extra_fields": ["lang"]},
            "output": {"dir": str(out)}, "engine": {"name": engine},
            "stages": [{"name": "perplexity", "params": {"models": str(tmp_path / "lm"), "config": str(qcfg),
                                                         "languages": ["en", "zh", "fr"]}},
                       {"name": "quality_classifier", "params": {"models": str(clf), "config": str(qcfg),
                                                                 "languages": ["en", "zh", "fr"]}}]})
        manifest = run_pipeline(cfg, quiet=True)
        lay = RunLayout(out)
        results[engine] = (_read_all(lay.output_dir), _read_all(lay.rejects_dir), manifest["counts"])
    base = results["local"]
    kept, rej, counts = base
    assert kept.num_rows + rej.num_rows == len(rows)
    assert counts["by_stage"]["quality_classifier"]["reasons"].get("quality_score_low", 0) >= 10  # en junk
    assert set(kept.filter(pa.compute.equal(kept.column("lang"), "fr")).column("perplexity").to_pylist()) == {None}
    assert set(kept.column("perplexity_bucket").drop_null().to_pylist()) <= {"head", "middle", "tail"}
    for engine in ("ray", "beam"):
        assert results[engine][0].equals(kept), engine
        assert results[engine][1].equals(rej), engine
        assert results[engine][2] == counts, engine
