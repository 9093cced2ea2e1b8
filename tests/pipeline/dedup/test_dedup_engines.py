"""Dedup through the engines' shuffles: in-process, Ray Data and Beam give identical results,
and a rerun reuses the finished global phases."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from bench.dedup_corpus import generate


def _cfg(raw, out, engine):
    return PipelineConfig.model_validate({
        "input": {"paths": [str(raw)], "extra_fields": ["lang"], "split_mb": 0.05},
        "output": {"dir": str(out)}, "stages": ["dedup_exact", {"name": "dedup_near", "params": {"num_parts": 8}}],
        "engine": {"name": engine}})


def _tables(out):
    return (pa.concat_tables([pq.read_table(p) for p in sorted((out / "output").glob("*.parquet"))]).sort_by("id"),
            pa.concat_tables([pq.read_table(p) for p in sorted((out / "rejects").glob("*.parquet"))]).sort_by("id"))


@pytest.mark.ray
@pytest.mark.beam
def test_dedup_identical_on_all_engines(tmp_path, ray_session):
    docs, _ = generate(300, seed=5)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    # a shard made only of exact copies: after exact dedup it has no keys left for near dedup
    (raw / "e.jsonl").write_text("".join(json.dumps({**d, "id": "copy-" + d["id"]}, ensure_ascii=False) + "\n"
                                         for d in docs[:20]), encoding="utf-8")
    res = {}
    for engine in ("local", "ray", "beam"):
        m = run_pipeline(_cfg(raw, tmp_path / engine, engine), quiet=True)
        res[engine] = (*_tables(tmp_path / engine), m["counts"])
    assert len(list((tmp_path / "local" / "output").glob("*.parquet"))) > 1  # several units
    for engine in ("ray", "beam"):
        assert res[engine][0].equals(res["local"][0]), engine
        assert res[engine][1].equals(res["local"][1]), engine
        assert res[engine][2] == res["local"][2], engine
    assert res["local"][2]["by_stage"]["dedup_near"]["dropped"] > 0


def test_rerun_reuses_global_phases(tmp_path):
    docs, _ = generate(200, seed=6)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    cfg = _cfg(raw, tmp_path / "run", "local")
    first = run_pipeline(cfg, quiet=True)
    success = tmp_path / "run" / "dedup" / "dedup_near" / "_SUCCESS"
    mtime = success.stat().st_mtime_ns
    # lose some final outputs (as if killed during the apply phase): they are rebuilt identically
    before = _tables(tmp_path / "run")
    for p in sorted((tmp_path / "run" / "units").glob("*.json"))[:2]:
        p.unlink()
    second = run_pipeline(cfg, quiet=True)
    assert success.stat().st_mtime_ns == mtime
    assert second["counts"] == first["counts"]
    after = _tables(tmp_path / "run")
    assert after[0].equals(before[0]) and after[1].equals(before[1])
