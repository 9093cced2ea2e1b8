"""One run context (pipeline/core/context.py): the registry and layout chosen once per run,
handed to every stage's setup, recorded in the manifest, read back by the steps after it."""

from __future__ import annotations

import json
import logging
import pickle

import pyarrow as pa
import pytest

from babelmill.languages import DEFAULT_PATH, load_registry, registry_fingerprint, use_registry
from babelmill.pipeline.config import PipelineConfig, build_stages
from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.runner.run import run_pipeline
from babelmill.yamlconf import ConfigError
from tests.pipeline.core.user_stages import RecordsContext
from tests.pipeline.custom_registry import write_registry

MOD = "tests.pipeline.core.user_stages"


def _raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    docs = [{"id": "a", "text": "one document of the run", "lang": "en"},
            {"id": "b", "text": "another document of it", "lang": "km"}]
    (raw / "d.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return raw


def _cfg(tmp_path, **extra):
    return PipelineConfig.model_validate({
        "input": {"paths": [str(_raw(tmp_path))], "extra_fields": ["lang"]}, "output": {"dir": str(tmp_path / "run")},
        "stages": [f"{MOD}:RecordsContext"], "engine": {"name": "local"}, **extra})


def test_from_config_resolves_the_registry_once(tmp_path, monkeypatch):
    reg = write_registry(tmp_path / "langs.yaml", drop=("km",))
    monkeypatch.chdir(tmp_path)
    ctx = RunContext.from_config(_cfg(tmp_path, languages="langs.yaml"))
    assert ctx.registry_path == str(reg.resolve())  # absolute: workers elsewhere read the same file
    assert ctx.registry_fingerprint == registry_fingerprint(reg)
    assert "km" not in ctx.languages and "en" in ctx.languages and len(ctx.languages) == len(load_registry(reg))
    assert ctx.registry_source == "langs.yaml" and ctx.layout.root == tmp_path / "run"
    assert pickle.loads(pickle.dumps(ctx)) == ctx == RunContext.from_dict(json.loads(json.dumps(ctx.to_dict())))  # noqa: S301
    # the config's name for it, the same file by another name, or nothing: the run's registry
    assert ctx.uses_run_registry(None) and ctx.uses_run_registry("langs.yaml") and ctx.uses_run_registry(str(reg))
    assert not ctx.uses_run_registry(str(DEFAULT_PATH))
    assert "km" in ctx.registry_for(str(DEFAULT_PATH))  # a stage's own `registry` still wins


def test_env_registry_is_the_default_and_edits_mid_run_are_refused(tmp_path, monkeypatch):
    reg = write_registry(tmp_path / "env.yaml", drop=("km",))
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(reg))
    ctx = RunContext.from_config(_cfg(tmp_path))
    assert ctx.registry_path == str(reg.resolve()) and ctx.registry_source is None
    assert RunContext.default().registry_path == str(reg.resolve())
    write_registry(reg, drop=("km", "th"))
    with pytest.raises(ConfigError, match="changed while the run was going"):
        _ = ctx.registry


def test_use_registry_is_what_load_registry_reads_without_a_path(tmp_path, monkeypatch):
    reg = write_registry(tmp_path / "r.yaml", drop=("km",))
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(DEFAULT_PATH))
    with use_registry(reg):
        assert "km" not in load_registry()
        assert "km" in load_registry(DEFAULT_PATH)  # an explicit path still wins
    assert "km" in load_registry()


def test_every_stage_setup_gets_the_run_context_and_the_manifest_records_it(tmp_path):
    reg = write_registry(tmp_path / "langs.yaml", drop=("km",))
    RecordsContext.contexts.clear()
    m = run_pipeline(_cfg(tmp_path, languages=str(reg)), quiet=True)
    assert RecordsContext.contexts, "setup was not called"
    assert {c.registry_path for c in RecordsContext.contexts} == {str(reg.resolve())}
    assert {c.run_dir for c in RecordsContext.contexts} == {str(tmp_path / "run")}
    rec = m["registry"]
    assert rec["path"] == str(reg.resolve()) and rec["fingerprint"] == registry_fingerprint(reg)
    assert rec["languages"] == load_registry(reg).codes and "km" not in rec["languages"]
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["registry"] == rec
    # the steps after the run read it back from the manifest, whatever the environment says now
    assert RunContext.from_manifest(m, tmp_path / "run").registry_path == str(reg.resolve())


def test_from_manifest_of_an_older_run_follows_the_config_then_the_environment(tmp_path, monkeypatch, caplog):
    reg = write_registry(tmp_path / "env.yaml", drop=("km",))
    old = {"config": {"languages": None, "output": {"format": "parquet"}}}  # no `registry` record
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(reg))
    assert RunContext.from_manifest(old).registry_path == str(reg.resolve())
    monkeypatch.delenv("BABELMILL_LANGUAGES")
    assert RunContext.from_manifest(old).registry_path == str(DEFAULT_PATH.resolve())
    # a recorded registry edited since: the file as it is now, with a warning
    rec = {**old, "registry": {"path": str(reg), "fingerprint": "0" * 16}}
    with caplog.at_level(logging.WARNING, logger="babelmill.pipeline.core.context"):
        ctx = RunContext.from_manifest(rec)
    assert ctx.registry_path == str(reg.resolve()) and "changed since" in caplog.text


def test_pickled_stage_keeps_its_context_and_standalone_stages_use_the_environment(tmp_path, monkeypatch):
    reg = write_registry(tmp_path / "r.yaml", drop=("km",))
    (st,) = build_stages(_cfg(tmp_path))
    ctx = RunContext.for_registry(reg, tmp_path / "run")
    st.bind(ctx)
    clone = pickle.loads(pickle.dumps(st))  # noqa: S301 - our own bytes
    RecordsContext.contexts.clear()
    clone(pa.RecordBatch.from_pydict({"id": ["a"], "text": ["x"]}))
    assert RecordsContext.contexts == [ctx]
    # used on its own: $BABELMILL_LANGUAGES, as load_registry() would
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(reg))
    (alone,) = build_stages(_cfg(tmp_path))
    alone.ensure_setup()
    assert RecordsContext.contexts[-1].registry_path == str(reg.resolve()) and RecordsContext.contexts[-1].run_dir is None


def test_runner_progress_messages_are_info(tmp_path, caplog):
    cfg = _cfg(tmp_path)
    run_pipeline(cfg, quiet=True)
    with caplog.at_level(logging.INFO, logger="babelmill.pipeline.runner.run"):
        run_pipeline(cfg, quiet=True)
    resuming = [r for r in caplog.records if r.getMessage().startswith("resuming:")]
    assert resuming and all(r.levelno == logging.INFO for r in resuming)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
