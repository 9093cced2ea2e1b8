"""The global-stage contract (pipeline/core/global_stage.py): a new global stage is one class
in one file, and the runner runs it like the dedup stages, on every engine."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from babelmill.yamlconf import ConfigError

STAGE = "tests.pipeline.core.global_first_word:FirstWordDedup"
DOCS = [{"id": "a", "text": "Alpha one"}, {"id": "b", "text": "beta two"}, {"id": "c", "text": "alpha three"},
        {"id": "d", "text": "Gamma four"}, {"id": "e", "text": "ALPHA five"}, {"id": "f", "text": "beta six"}]


def _cfg(tmp_path, engine, stages):
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")
    return PipelineConfig.model_validate({"input": {"paths": [str(raw)]}, "output": {"dir": str(tmp_path / f"run-{engine}")},
                                          "stages": stages, "engine": {"name": engine}})


@pytest.mark.parametrize("engine", ["local", pytest.param("beam", marks=pytest.mark.beam)])
def test_a_new_global_stage_runs_like_dedup(tmp_path, engine):
    m = run_pipeline(_cfg(tmp_path, engine, [STAGE]), quiet=True)
    out = pq.read_table(tmp_path / f"run-{engine}" / "output")
    assert sorted(out.column("id").to_pylist()) == ["a", "b", "d"]
    assert "first_word" not in out.column_names  # internal columns stay internal
    sizes = dict(zip(out.column("id").to_pylist(), out.column("cluster_size").to_pylist(), strict=True))
    assert sizes == {"a": 3, "b": 2, "d": 1}
    rej = {r["id"]: r for r in pq.read_table(tmp_path / f"run-{engine}" / "rejects").to_pylist()}
    assert {k: (v["kept_id"], v["reason"], v["stage"]) for k, v in rej.items()} == {
        "c": ("a", "dup_first_word", "first_word_dedup"), "e": ("a", "dup_first_word", "first_word_dedup"),
        "f": ("b", "dup_first_word", "first_word_dedup")}
    assert m["counts"]["balanced"] and m["counts"]["docs_in"] == 6


def test_a_global_stage_must_come_last(tmp_path):
    with pytest.raises(ConfigError, match=r"global stages \(first_word_dedup\) must come after .* move quality"):
        run_pipeline(_cfg(tmp_path, "local", [STAGE, "quality"]), quiet=True)


def test_dedup_against_needs_the_index_methods(tmp_path):
    """A global stage without index methods cannot be indexed or used against an earlier run:
    said at start-up, naming the stage."""
    run_pipeline(_cfg(tmp_path, "local", [STAGE]), quiet=True)
    for dedup in ({"against": [str(tmp_path / "run-local")]}, {"index": True}):
        doc = _cfg(tmp_path, "local", [STAGE]).model_dump()
        doc.update(output={"dir": str(tmp_path / "second")}, dedup=dedup)
        with pytest.raises(ConfigError, match="first_word_dedup cannot be indexed"):
            run_pipeline(PipelineConfig.model_validate(doc), quiet=True)
