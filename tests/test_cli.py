"""The command line: `babelmill langid` scripting contract and error reporting."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from babelmill.cli import main


def test_langid_subcommand_jsonl_and_parquet(tmp_path, corpus, capsys):
    out = tmp_path / "langs.parquet"
    assert main(["langid", "--input", str(corpus), "--output", str(out), "--engine", "local"]) == 0
    t = pq.read_table(out)
    assert t.column_names == ["id", "lang", "lang_score", "script", "top_langs"]
    assert t.num_rows == 3 * 22  # all readable documents, annotated, none dropped
    by_id = dict(zip(t.column("id").to_pylist(), t.column("lang").to_pylist(), strict=True))
    assert by_id["f0-de-0"] == "de" and by_id["f1-th-1"] == "th" and by_id["f2-sw-0"] == "sw"
    assert (tmp_path / "langs.parquet.run" / "manifest.json").exists()
    # Parquet input
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["Bonjour tout le monde, comment allez-vous aujourd'hui ?",
                                                        "Guten Morgen, wie geht es Ihnen heute?"]}), src)
    out2 = tmp_path / "p.parquet"
    assert main(["langid", "--input", str(src), "--output", str(out2), "--engine", "local"]) == 0
    assert pq.read_table(out2).column("lang").to_pylist() == ["fr", "de"]


def test_strict_error_names_file_and_line(tmp_path, jsonl_writer, capsys):
    p = jsonl_writer(tmp_path / "x.jsonl", [{"id": "1", "text": "fine text here"}, '{"id": 2, "text": '])
    rc = main(["langid", "--input", str(p), "--output", str(tmp_path / "o.parquet"), "--engine", "local", "--strict"])
    assert rc == 2
    assert f"{p}:2: bad_json" in capsys.readouterr().err


def test_run_with_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: {paths: [x]}\noutput: {dir: o}\nengnie: local\n")
    assert main(["run", str(cfg)]) == 2
    assert f"{cfg}:3: engnie: unknown key" in capsys.readouterr().err


def test_dedup_subcommand_contract(tmp_path, jsonl_writer):
    text = "The committee published its annual report on the quality of water in the northern rivers. " * 4
    rows = [{"id": "a", "text": text}, {"id": "b", "text": text.upper()},
            {"id": "c", "text": text.replace("northern", "southern", 1)},
            {"id": "d", "text": "Something else entirely, about mountains and the weather in spring. " * 4}]
    src = jsonl_writer(tmp_path / "in.jsonl", rows)
    out = tmp_path / "dd"
    assert main(["dedup", "--input", str(src), "--output", str(out), "--engine", "local"]) == 0
    kept = pq.read_table(out / "output")
    assert sorted(kept.column("id").to_pylist()) == ["a", "d"]
    rej = {r["id"]: r for r in pq.read_table(out / "rejects").to_pylist()}
    assert rej["b"]["reason"] == "dup_exact" and rej["b"]["kept_id"] == "a"
    assert rej["c"]["reason"] == "dup_near" and rej["c"]["kept_id"] == "a"
    assert dict(zip(kept.column("id").to_pylist(), kept.column("cluster_size").to_pylist(), strict=True)) == {"a": 3, "d": 1}


def test_dedup_against_an_earlier_run(tmp_path, jsonl_writer, capsys):
    """`babelmill dedup --against EARLIER_RUN_DIR`: a new crawl's copies of documents kept (or
    dropped) earlier are dropped, naming the earlier kept document and run; nothing else is."""
    text = "The committee published its annual report on the quality of water in the northern rivers. " * 4
    first = tmp_path / "crawl1"
    assert main(["dedup", "--input", str(jsonl_writer(tmp_path / "c1.jsonl", [{"id": "a", "text": text}])),
                 "--output", str(first), "--engine", "local", "--index"]) == 0
    assert (first / "dedup" / "index" / "index.json").is_file()
    rows = [{"id": "n1", "text": text.replace("annual", "yearly", 1)},
            {"id": "n2", "text": "Something else entirely, about mountains and the weather in spring. " * 4}]
    out = tmp_path / "crawl2"
    assert main(["dedup", "--input", str(jsonl_writer(tmp_path / "c2.jsonl", rows)), "--output", str(out),
                 "--engine", "local", "--against", str(first)]) == 0
    assert pq.read_table(out / "output").column("id").to_pylist() == ["n2"]
    (rej,) = pq.read_table(out / "rejects").to_pylist()
    assert rej["id"] == "n1" and rej["kept_id"] == "a" and rej["reason"] == "dup_near"
    assert f"from earlier run {first}" in rej["detail"]
    capsys.readouterr()
    assert main(["dedup", "--input", str(tmp_path / "c2.jsonl"), "--output", str(tmp_path / "crawl3"),
                 "--engine", "local", "--against", str(tmp_path / "c2.jsonl")]) == 2
    assert "has no dedup index" in _one_line_error(capsys)


# -- issue 12: every user error is one line and exit code 2 ------------------------------------
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("babelmill: error: "), err
    return lines[0]


def _cfg(tmp_path, doc, name="c.yaml"):
    import yaml

    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def test_output_path_that_is_a_file(tmp_path, corpus, capsys):
    f = tmp_path / "taken"
    f.write_text("not a directory")
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(f)}, "engine": {"name": "local"}})
    assert main(["run", str(cfg)]) == 2
    assert f"output directory {f} exists and is not a directory" in _one_line_error(capsys)
    assert main(["run", str(cfg), "--output", str(f / "sub")]) == 2  # its parent is a file
    assert f"cannot create output directory {f / 'sub'}" in _one_line_error(capsys)
    d = tmp_path / "a_dir"
    d.mkdir()
    assert main(["langid", "--input", str(corpus), "--output", str(d), "--engine", "local"]) == 2
    assert f"--output {d} is a directory" in _one_line_error(capsys)


def test_unwritable_output_dir(tmp_path, corpus, capsys, monkeypatch):
    """Root ignores mode bits, so the probe write is made to fail as a read-only mount would."""
    from babelmill.pipeline.runner import lock

    def read_only(directory):
        raise PermissionError(13, "Permission denied", str(directory / ".write-probe"))

    monkeypatch.setattr(lock, "_probe_write", read_only)
    out = tmp_path / "ro"
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}})
    assert main(["run", str(cfg)]) == 2
    assert f"output directory {out} is not writable: Permission denied" in _one_line_error(capsys)


def test_read_only_output_dir_for_real(tmp_path, corpus, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: permission bits do not stop root (see test_unwritable_output_dir)")
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}})
        assert main(["run", str(cfg)]) == 2
        assert "is not writable" in _one_line_error(capsys)
    finally:
        out.chmod(0o755)


def test_duplicated_stage_names_file_and_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: {paths: [x]}\noutput: {dir: o}\nstages:\n  - langid\n  - quality\n  - langid\n")
    assert main(["run", str(cfg)]) == 2
    line = _one_line_error(capsys)
    assert f"{cfg}:6: stages.2 (langid): stage 'langid' is already stages.0" in line


def test_missing_input(tmp_path, capsys):
    cfg = _cfg(tmp_path, {"input": {"paths": [str(tmp_path / "nope.jsonl")]}, "output": {"dir": str(tmp_path / "o")},
                          "engine": {"name": "local"}})
    assert main(["run", str(cfg)]) == 2
    assert "nope.jsonl" in _one_line_error(capsys)


def test_langid_accepts_the_overwrite_its_errors_suggest(tmp_path, corpus, capsys):
    from babelmill.pipeline.stages.langid import default_model_path

    out = tmp_path / "langs.parquet"
    args = ["langid", "--input", str(corpus), "--output", str(out), "--engine", "local"]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--model", default_model_path()]) == 2  # another config in OUT.run/
    assert "pass --overwrite" in _one_line_error(capsys)
    assert main([*args, "--model", default_model_path(), "--overwrite"]) == 0


def test_ray_dashboard_without_its_packages(tmp_path, corpus, capsys, monkeypatch):
    import importlib.util

    # as with `ray[data]` alone: requirements.txt pins ray[default], so hide its aiohttp
    find_spec = importlib.util.find_spec
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] == "aiohttp" else find_spec(name, *a))
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / "o")},
                          "engine": {"name": "ray", "ray": {"dashboard": True}}})
    assert main(["run", str(cfg)]) == 2
    line = _one_line_error(capsys)
    assert "engine.ray.dashboard: true needs Ray's dashboard packages" in line and "ray[default]" in line
    assert "aiohttp" in line
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_unexpected_errors_keep_their_traceback(tmp_path, corpus, monkeypatch):
    from babelmill.pipeline.runner import run

    def bug(*a, **k):
        raise RuntimeError("a bug, not a user error")

    monkeypatch.setattr(run, "run_pipeline", bug)
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / "o")}})
    with pytest.raises(RuntimeError, match="a bug"):
        main(["run", str(cfg)])


@pytest.mark.ray
def test_strict_on_ray_reports_the_input_error_not_rays_wrapper(tmp_path, jsonl_writer, capfd, ray_session):
    p = jsonl_writer(tmp_path / "x.jsonl", [{"id": "1", "text": "fine text here"}, '{"id": 2, "text": '])
    rc = main(["langid", "--input", str(p), "--output", str(tmp_path / "o.parquet"), "--engine", "ray", "--strict"])
    assert rc == 2
    err = capfd.readouterr().err  # file-descriptor level: Ray's own log handlers included
    assert "Traceback" not in err and "UserCodeException" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("babelmill: error: ")]
    assert line == f"babelmill: error: {p}:2: bad_json: Expecting value: column 1"


@pytest.mark.beam
def test_strict_on_beam_reports_the_input_error(tmp_path, jsonl_writer, capsys):
    p = jsonl_writer(tmp_path / "x.jsonl", [{"id": "1", "text": "fine text here"}, '{"id": 2, "text": '])
    rc = main(["langid", "--input", str(p), "--output", str(tmp_path / "o.parquet"), "--engine", "beam", "--strict"])
    assert rc == 2
    assert _one_line_error(capsys) == f"babelmill: error: {p}:2: bad_json: Expecting value: column 1"


def test_langid_runs_in_process_by_default(tmp_path, corpus):
    """`babelmill langid` declares engine_default="local"; it used to be ignored (Ray started)."""
    out = tmp_path / "langs.parquet"
    assert main(["langid", "--input", str(corpus), "--output", str(out)]) == 0
    manifest = json.loads((tmp_path / "langs.parquet.run" / "manifest.json").read_text())
    assert manifest["engine"] == "local"


def test_calibrate_options_show_in_help_and_parse(capsys, corpus, tmp_path):
    """calibrate used to be parsed through argparse.REMAINDER: its options were not in --help."""
    with pytest.raises(SystemExit) as e:
        main(["calibrate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--quantile" in out and "--sample" in out
    assert main(["calibrate", "--input", str(corpus), "--output", str(tmp_path / "q.yaml"), "--sample", "0"]) == 2
    assert "--sample must be > 0" in _one_line_error(capsys)


def test_both_calibrations_are_subcommands_and_help_tells_them_apart(capsys):
    """`babelmill calibrate` fits the quality filter's thresholds; `babelmill audit-calibrate`
    (was `python -m babelmill.contamination.detect calibrate`, out of babelmill's reach) sets
    the audit's verdict threshold; both list their options in --help."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip().startswith(("calibrate", "audit-calibrate"))}
    assert "quality" in lines["calibrate"] and "contamination" in lines["audit-calibrate"], out
    with pytest.raises(SystemExit) as e:
        main(["audit-calibrate", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert all(o in out for o in ("--delta", "--from-json", "--margin", "--out"))


def test_errors_are_handled_in_one_place_and_bugs_keep_their_traceback(tmp_path, capsys, monkeypatch):
    """babelmill.errors.run_command is the one handler: a domain error is one line and exit 2,
    any other exception (a bug) propagates with its traceback, for every subsystem."""
    from babelmill import errors
    from babelmill.contamination import cli as audit_cli
    from babelmill.tokenizer import cli as tokenizer_cli

    def bug(args):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(tokenizer_cli, "cmd_eval", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["tokenizer", "eval", "--tokenizer", "t", "--parallel", "p", "--json", "j"])
    monkeypatch.setattr(audit_cli, "cmd_calibrate", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["audit-calibrate", "--delta", "0.1", "--out", str(tmp_path / "v.yaml")])

    class Bad(errors.BabelmillError, ValueError):
        pass

    def user_error(args):
        raise Bad("x.yaml:3: fix me\nsecond line")

    monkeypatch.setattr(audit_cli, "cmd_calibrate", user_error)
    assert main(["audit-calibrate", "--delta", "0.1", "--out", str(tmp_path / "v.yaml")]) == 2
    assert _one_line_error(capsys) == "babelmill: error: x.yaml:3: fix me; second line"


def test_no_subsystem_cli_prints_errors_or_parses_a_remainder():
    """Only babelmill.errors turns exceptions into `babelmill: error:` lines (no per-CLI
    catch lists), and no subcommand hides its options behind argparse.REMAINDER."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for folder in ("babelmill", "pipeline", "tokenizer", "pretrain", "contamination"):
        for path in sorted((root / folder).rglob("*.py")):
            if path == root / "babelmill" / "errors.py" or "__pycache__" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
                if name in ("error_line", "REMAINDER"):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {name}")
    assert not found, "\n".join(found)


def test_run_set_overrides_config_keys(tmp_path, corpus, capsys):
    """`--set KEY=VALUE` (values read as YAML) reaches the validated config: here the engine, the
    output and a stage parameter through a list index."""
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / "unused")},
                          "engine": {"name": "ray"}, "stages": [{"name": "langid", "params": {"drop": True}}]})
    out = tmp_path / "out"
    assert main(["run", str(cfg), "--set", "engine.name=local", "--set", f"output.dir={out}",
                 "--set", "stages.0.params.drop=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"] == "local"
    langid = manifest["counts"]["by_stage"]["langid"]
    assert langid["dropped"] == 0 and langid["out"] == langid["in"] > 0  # drop: false took effect
    assert not (tmp_path / "unused").exists()
    capsys.readouterr()


@pytest.mark.parametrize("item, message", [
    ("engine.name", "expected KEY=VALUE"),
    ("stages.3.params.drop=false", "stages.3: no such list item"),
    ("engine.name=spark", "engine.name"),
    ("output.dir.x=1", "output.dir is a value"),
])
def test_run_bad_set_is_one_line(tmp_path, corpus, capsys, item, message):
    cfg = _cfg(tmp_path, {"input": {"paths": [str(corpus)]}, "output": {"dir": str(tmp_path / "o")},
                          "engine": {"name": "local"}, "stages": ["langid"]})
    assert main(["run", str(cfg), "--set", item]) == 2
    assert message in _one_line_error(capsys)


# -- issue 18.2: messages through loggers, their level set once by `babelmill -q/-v` -------------
@pytest.fixture
def babelmill_level():
    import logging

    logger = logging.getLogger("babelmill")
    before = logger.level
    yield logger
    logger.setLevel(before)


@pytest.mark.parametrize("flags, level", [([], "INFO"), (["-q"], "WARNING"), (["--quiet"], "WARNING"),
                                          (["-v"], "DEBUG"), (["--verbose"], "DEBUG")])
def test_quiet_and_verbose_set_the_level_of_babelmill_loggers(tmp_path, capsys, babelmill_level, flags, level):
    import logging

    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: {paths: [x]}\noutput: {dir: o}\nengnie: local\n")
    assert main([*flags, "run", str(cfg)]) == 2
    assert babelmill_level.level == getattr(logging, level)
    assert logging.getLogger("babelmill.pipeline.runner.run").getEffectiveLevel() == getattr(logging, level)
    with pytest.raises(SystemExit):
        main(["-q", "-v", "run", str(cfg)])  # one or the other
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_logging_goes_to_stderr_in_short_lines(capsys, babelmill_level):
    """Without handlers of its own (as in a plain `babelmill ...` process) the CLI installs one:
    `babelmill: message` for information, `babelmill: warning: ...` otherwise, on stderr."""
    import logging

    from babelmill.cli import configure_logging

    root = logging.getLogger()
    saved, saved_level = root.handlers[:], root.level  # pytest's own, put back below
    for h in saved:
        root.removeHandler(h)
    try:
        configure_logging(0)
        log = logging.getLogger("babelmill.pipeline.runner.run")
        log.info("resuming: 1 of 2 work units already done")
        log.debug("not shown")
        log.warning("3 input(s) skipped")
        logging.getLogger("someone.else").info("not shown either")
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.splitlines() == ["babelmill: resuming: 1 of 2 work units already done",
                                             "babelmill: warning: 3 input(s) skipped"]
        configure_logging(-1)  # the handler is installed once; -q: warnings only
        assert len(root.handlers) == 1
        log.info("not shown")
        log.warning("still shown")
        assert capsys.readouterr().err.splitlines() == ["babelmill: warning: still shown"]
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
        for h in saved:
            root.addHandler(h)
        root.setLevel(saved_level)
