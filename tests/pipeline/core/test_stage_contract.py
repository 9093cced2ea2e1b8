"""The stage contract itself (pipeline/core/stage.py, chain.py): what every stage, built-in or
a user's, can rely on and must keep."""

from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.core.chain import ChainCounts, apply_chain
from babelmill.pipeline.core.stage import StageError, get_stage_class, with_drops
from babelmill.pipeline.runner.run import run_pipeline

MOD = "tests.pipeline.core.user_stages"


def _batch(texts):
    return pa.RecordBatch.from_pydict({"id": [f"d{i}" for i in range(len(texts))], "text": texts})


def test_a_user_stage_is_named_module_colon_class_and_runs_in_a_pipeline(tmp_path):
    cls = get_stage_class(f"{MOD}:DropShort")
    assert cls.name == "drop_short"
    raw = tmp_path / "raw"
    raw.mkdir()
    docs = [{"id": "a", "text": "long enough text"}, {"id": "b", "text": "short"}]
    (raw / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    cfg = PipelineConfig.model_validate({"input": {"paths": [str(raw)]}, "output": {"dir": str(tmp_path / "run")},
                                         "stages": [{"name": f"{MOD}:DropShort", "params": {"min_chars": 8}}],
                                         "engine": {"name": "local"}})
    m = run_pipeline(cfg, quiet=True)
    assert pq.read_table(tmp_path / "run" / "output").column("id").to_pylist() == ["a"]
    (rej,) = pq.read_table(tmp_path / "run" / "rejects").to_pylist()
    assert (rej["id"], rej["stage"], rej["reason"], rej["detail"]) == ("b", "drop_short", "too_short",
                                                                       "fewer than 8 characters")
    assert m["counts"]["balanced"]


def test_unknown_parameters_and_unknown_stages_are_errors():
    with pytest.raises(StageError, match="min_char: unknown parameter"):
        get_stage_class(f"{MOD}:DropShort")(min_char=3)
    with pytest.raises(StageError, match="unknown stage"):
        get_stage_class("no_such_stage")


def test_a_stage_may_not_change_the_row_count():
    with pytest.raises(StageError, match=r"changed the row count \(3 -> 2\)"):
        get_stage_class(f"{MOD}:LosesRows")()(_batch(["a", "b", "c"]))


def test_a_missing_required_column_is_named():
    with pytest.raises(StageError, match=r"needs column\(s\) \['lang'\]"):
        get_stage_class(f"{MOD}:NeedsLang")()(_batch(["a"]))


def test_the_first_stage_to_drop_a_row_is_the_one_reported():
    b = _batch(["tiny", "a document long enough"])
    first = with_drops(b, pa.array(["first", None], pa.string()), pa.array(["by the first", None], pa.string()))
    both = with_drops(first, pa.array(["second", "second"], pa.string()))
    assert both.column("drop_reason").to_pylist() == ["first", "second"]
    assert both.column("drop_detail").to_pylist() == ["by the first", None]
    # through a chain: a row dropped by one stage never reaches the next
    short, all_ = get_stage_class(f"{MOD}:DropShort")(min_chars=10), get_stage_class(f"{MOD}:DropAll")()
    counts = ChainCounts()
    kept, rejects = apply_chain([short, all_], b, counts)
    assert kept.num_rows == 0
    assert [r.column("stage").to_pylist() for r in rejects] == [["drop_short"], ["drop_all"]]
    assert counts.stage_in == {"drop_short": 2, "drop_all": 1}
    assert "drop_reason" not in kept.schema.names and "n_chars" in kept.schema.names


def test_only_parameters_travel_when_pickled_and_setup_runs_again():
    cls = get_stage_class(f"{MOD}:DropShort")
    st = cls(min_chars=5)
    st(_batch(["abcdef"]))
    before = cls.setups
    clone = pickle.loads(pickle.dumps(st))  # noqa: S301 - our own bytes, as engines ship stages
    assert clone.params == st.params and not hasattr(clone, "limit")  # per-worker state did not travel
    out = clone(_batch(["abc", "abcdefgh"]))
    assert cls.setups == before + 1
    assert out.column("drop_reason").to_pylist() == ["too_short", None]
