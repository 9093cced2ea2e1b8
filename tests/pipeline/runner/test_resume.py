"""A run killed at any point and rerun gives the same output as an uninterrupted run; a
rerun of a finished run skips every unit; a changed config is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from babelmill.pipeline.config import PipelineConfig, load_config
from babelmill.pipeline.runner.layout import RunLayout
from babelmill.pipeline.runner.run import RunStateError, run_pipeline

SLOW_STAGE = textwrap.dedent(
    '''
    import time
    import pyarrow as pa
    from babelmill.pipeline.core.stage import Stage, StageParams

    class Params(StageParams):
        seconds: float = 0.3

    class SlowUpper(Stage):
        """Test stage: upper-cases text slowly, so that a run can be killed mid-way."""
        name = "slow_upper"
        produces = {"upper": pa.large_string()}
        Params = Params

        def process(self, batch):
            time.sleep(self.params.seconds)
            import pyarrow.compute as pc
            return batch.append_column("upper", pc.utf8_upper(batch.column("text")))
    '''
)


def _write_config(tmp_path, corpus, out, seconds):
    (tmp_path / "mods").mkdir(exist_ok=True)
    (tmp_path / "mods" / "slowmod.py").write_text(SLOW_STAGE)
    cfg = {
        "name": "resume",
        "input": {"paths": [str(corpus)], "batch_size": 4},
        "output": {"dir": str(out)},
        "stages": [{"name": "slowmod:SlowUpper", "params": {"seconds": seconds}}, "langid"],
        "engine": {"name": "local"},
    }
    path = tmp_path / f"cfg-{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "mods"), env.get("PYTHONPATH", "")])
    return env


def _tables(out):
    lay = RunLayout(out)
    data = pa.concat_tables([pq.read_table(p) for p in sorted(lay.output_dir.glob("*.parquet"))])
    rej = pa.concat_tables([pq.read_table(p) for p in sorted(lay.rejects_dir.glob("*.parquet"))])
    return data, rej


def _run(cfg_path, env, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "babelmill.cli", "run", str(cfg_path)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw
    )


@pytest.mark.slow
def test_killed_run_resumes_to_identical_output(tmp_path, corpus_factory):
    corpus = corpus_factory(tmp_path, files=6, docs_per_lang=2)
    env = _env(tmp_path)
    # Reference: uninterrupted run.
    ref_cfg = _write_config(tmp_path, corpus, tmp_path / "ref", 0.0)
    p = _run(ref_cfg, env)
    assert p.wait(timeout=120) == 0, p.stderr.read()
    # Killed run: SIGKILL once some (not all) units are done, then rerun.
    cfg = _write_config(tmp_path, corpus, tmp_path / "killed", 0.15)
    units = tmp_path / "killed" / "units"
    p = _run(cfg, env)
    deadline = time.time() + 120
    while time.time() < deadline:
        done = len(list(units.glob("*.json"))) if units.is_dir() else 0
        if done >= 2:
            break
        time.sleep(0.05)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    done_before = len(list(units.glob("*.json")))
    assert 2 <= done_before < 6, "kill should land mid-run"
    # no half-written file under a final name: every shard present is readable
    for f in (tmp_path / "killed" / "output").glob("*.parquet"):
        pq.read_metadata(f)
    p = _run(cfg, env)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "resuming" in err
    ref_data, ref_rej = _tables(tmp_path / "ref")
    data, rej = _tables(tmp_path / "killed")
    assert data.equals(ref_data)
    assert rej.equals(ref_rej)
    assert not list((tmp_path / "killed").rglob("*.tmp-*"))
    m = yaml.safe_load((tmp_path / "killed" / "manifest.json").read_text())
    assert m["units"]["reused_from_earlier_run"] == done_before


def test_rerun_skips_finished_units_and_refuses_other_config(tmp_path, corpus):
    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(
        {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "stages": ["langid"], "engine": {"name": "local"}}
    )
    first = run_pipeline(cfg, quiet=True)
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "output").iterdir()}
    second = run_pipeline(cfg, quiet=True)
    assert second["units"]["reused_from_earlier_run"] == second["units"]["total"] == 3
    assert second["counts"] == first["counts"]
    assert {p: p.stat().st_mtime_ns for p in (out / "output").iterdir()} == mtimes
    other = cfg.model_copy(update={"stages": []})
    with pytest.raises(RunStateError, match="different configuration"):
        run_pipeline(other, quiet=True)
    third = run_pipeline(other, overwrite=True, quiet=True)
    assert third["units"]["reused_from_earlier_run"] == 0


def test_changed_input_is_detected(tmp_path, corpus):
    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(
        {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}}
    )
    run_pipeline(cfg, quiet=True)
    f = sorted(corpus.glob("*.jsonl"))[0]
    f.write_text(f.read_text() + '{"id": "new", "text": "another document"}\n')
    with pytest.raises(RunStateError, match="changed"):
        run_pipeline(cfg, quiet=True)
    # --overwrite, as the message says, starts over and picks up the new document
    manifest = run_pipeline(cfg, quiet=True, overwrite=True)
    assert manifest["units"]["reused_from_earlier_run"] == 0
    assert manifest["counts"]["docs_in"] == len(corpus_ids(corpus)) and manifest["counts"]["balanced"]


def test_config_errors_name_file_line_and_key(tmp_path):
    from babelmill.yamlconf import ConfigError

    p = tmp_path / "bad.yaml"
    p.write_text("name: x\ninput:\n  paths: [a.jsonl]\n  txt_field: body\noutput:\n  dir: out\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}:4: input.txt_field: unknown key" in str(e.value)
    p.write_text("input:\n  paths: [a.jsonl]\noutput:\n  dir: out\nstages:\n  - name: langid\n    params: {k: 3, bogus: 1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert f"{p}:6: stages.0 (langid)" in str(e.value) and "bogus" in str(e.value)
    p.write_text("input:\n  paths: [a.jsonl]\noutput:\n  dir: out\nstages: [no_such_stage]\n")
    with pytest.raises(ConfigError, match="unknown stage 'no_such_stage'"):
        load_config(p)


def corpus_ids(corpus):
    """Every non-blank input line (malformed ones count: they are read rejects)."""
    ids = []
    for f in sorted(corpus.glob("*.jsonl")):
        ids += [line for line in f.read_text().splitlines() if line.strip()]
    return ids
