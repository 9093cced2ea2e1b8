"""Issue 12 (runner side): a dedup run whose inputs grew is refused, not silently reused; one
process per run directory; duplicate ids, lost records and skipped inputs are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from babelmill.cli import main
from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline

TEXT_A = "The committee published its annual report on water quality in the northern rivers last week. " * 3
TEXT_B = "A small bakery on the corner sells bread, cakes and pastries every morning except on Sundays. " * 3
TEXT_C = "Mountain trails were closed after the storm, and rangers asked hikers to stay in the valley. " * 3
TEXT_D = "The orchestra rehearsed the new symphony for weeks before the premiere in the old theatre. " * 3


def _dedup_cfg(tmp_path, raw, out, **extra):
    cfg = {"name": "dd", "input": {"paths": [str(raw)]}, "output": {"dir": str(out)},
           "stages": ["dedup_exact"], "engine": {"name": "local"}, **extra}
    path = tmp_path / f"cfg-{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _rows(out):
    kept = pq.read_table(out / "output").sort_by("id")
    rej = pq.read_table(out / "rejects").sort_by("id")
    return (kept.select(["id", "cluster_size"]).to_pylist(),
            rej.select(["id", "reason", "kept_id"]).to_pylist())


def test_dedup_rerun_over_added_input_is_refused(tmp_path, jsonl_writer, capsys):
    raw = tmp_path / "raw"
    jsonl_writer(raw / "a.jsonl", [{"id": "a1", "text": TEXT_A}, {"id": "a2", "text": TEXT_B}])
    jsonl_writer(raw / "b.jsonl", [{"id": "b1", "text": TEXT_A.upper()}, {"id": "b2", "text": TEXT_C}])
    out = tmp_path / "run"
    cfg = _dedup_cfg(tmp_path, raw, out)
    assert main(["run", str(cfg)]) == 0
    # a new file with a duplicate of an existing document (b2) and a unique one; its name sorts
    # first, so it also shifts every other unit's position (the document refs of the dedup phase)
    jsonl_writer(raw / "0-new.jsonl", [{"id": "n1", "text": TEXT_C}, {"id": "n2", "text": TEXT_D}])
    capsys.readouterr()
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("babelmill: error: input changed since the deduplication") and "Traceback" not in err
    assert "1 unit(s) added (0-new.jsonl-00000)" in err and "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    # as the message says: --overwrite gives exactly what a fresh run over the new input gives
    assert main(["run", str(cfg), "--overwrite"]) == 0
    fresh = tmp_path / "fresh"
    assert main(["run", str(_dedup_cfg(tmp_path, raw, fresh))]) == 0
    assert _rows(out) == _rows(fresh)
    kept, rej = _rows(out)
    assert [r["id"] for r in kept] == ["a1", "a2", "n1", "n2"]  # n1 is the first copy of TEXT_C now
    assert rej == [{"id": "b1", "reason": "dup_exact", "kept_id": "a1"},
                   {"id": "b2", "reason": "dup_exact", "kept_id": "n1"}]


def test_dedup_rerun_over_removed_or_changed_input_is_refused(tmp_path, jsonl_writer):
    raw = tmp_path / "raw"
    jsonl_writer(raw / "a.jsonl", [{"id": "a1", "text": TEXT_A}])
    jsonl_writer(raw / "b.jsonl", [{"id": "b1", "text": TEXT_A}])
    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(yaml.safe_load(_dedup_cfg(tmp_path, raw, out).read_text()))
    run_pipeline(cfg, quiet=True)
    assert run_pipeline(cfg, quiet=True)["units"]["reused_from_earlier_run"] == 2  # same input: reused
    (raw / "b.jsonl").unlink()
    from babelmill.pipeline.runner.run import RunStateError

    with pytest.raises(RunStateError, match=r"1 unit\(s\) removed \(b.jsonl-00000\)"):
        run_pipeline(cfg, quiet=True)


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from babelmill.pipeline.runner.lock import run_dir_lock
    with run_dir_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
    """
)


def test_second_process_in_a_run_dir_fails_at_once_and_a_dead_holder_does_not_block(tmp_path, corpus, capsys):
    from babelmill.pipeline.runner.lock import LOCK_NAME, RunDirInUseError

    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(
        {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}})
    (out / "output").mkdir(parents=True)
    leftover = out / "output" / "x.parquet.tmp-1-abcdef12"  # e.g. the other run's shard being written
    leftover.write_bytes(b"in progress")
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirInUseError, match=rf"run directory {out} is in use by pid {holder.pid} on host \S+ \(since "):
            run_pipeline(cfg, quiet=True)
        assert leftover.exists(), "the second run must not touch the first one's files"
        # balance and report write into the run dir too: same lock, same one-line error
        capsys.readouterr()
        assert main(["balance", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"babelmill: error: run directory {out} is in use by pid {holder.pid}" in err
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock: the kernel releases it
        holder.wait()
    assert (out / LOCK_NAME).exists()  # the stale file stays, and does not block
    manifest = run_pipeline(cfg, quiet=True)
    assert manifest["counts"]["balanced"] and not leftover.exists()
    # a finished run: `babelmill report` takes the lock as well
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        capsys.readouterr()
        assert main(["report", str(out)]) == 2
        assert "is in use by pid" in capsys.readouterr().err
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()


def test_lock_is_reentrant_in_one_process_and_overwrite_keeps_it(tmp_path, corpus):
    from babelmill.pipeline.runner.lock import LOCK_NAME, run_dir_lock

    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(
        {"input": {"paths": [str(corpus)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}})
    run_pipeline(cfg, quiet=True)
    inode = (out / LOCK_NAME).stat().st_ino
    with run_dir_lock(out):  # e.g. a caller holding the lock around run + report
        run_pipeline(cfg, quiet=True, overwrite=True)
    assert (out / LOCK_NAME).stat().st_ino == inode  # --overwrite did not delete the held lock file


def test_duplicate_ids_are_counted_and_warned_about(tmp_path, jsonl_writer, caplog):
    raw = tmp_path / "raw"
    jsonl_writer(raw / "a.jsonl", [{"id": "x", "text": TEXT_A}, {"id": "x", "text": TEXT_B},
                                   {"id": "y", "text": TEXT_C}, {"id": "y", "text": TEXT_D}, {"id": "x", "text": TEXT_D}])
    jsonl_writer(raw / "b.jsonl", [{"id": "x", "text": TEXT_A}])  # same id and text in another unit
    out = tmp_path / "run"
    cfg = PipelineConfig.model_validate(yaml.safe_load(_dedup_cfg(tmp_path, raw, out).read_text()))
    with caplog.at_level("WARNING", logger="babelmill.run"):
        manifest = run_pipeline(cfg, quiet=True)
    dup = manifest["counts"]["duplicate_ids"]
    assert dup == {"within_units": 3, "units_with_duplicates": 1, "kept_same_id": 1}
    assert "duplicate document ids: 3 document(s) reuse an id" in caplog.text
    # the stats of one unit say it, too
    assert json.loads((out / "units" / "a.jsonl-00000.json").read_text())["duplicate_ids"] == 3


def test_manifest_reports_skipped_inputs_and_lost_records(tmp_path, jsonl_writer, capsys):
    raw = tmp_path / "raw"
    jsonl_writer(raw / "a.jsonl", [{"id": "a1", "text": TEXT_A}])
    outside = jsonl_writer(tmp_path / "elsewhere" / "o.jsonl", [{"id": "o1", "text": TEXT_B}])
    os.symlink(outside, raw / "link.jsonl")  # leads out of the input folder: refused by default
    # a Parquet file with an unreadable middle row group: 1 reject row + 99 records lost
    p = raw / "rg.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(300)], "text": [f"document number {i} " * 10 for i in range(300)]}),
                   p, row_group_size=100)
    col = pq.ParquetFile(p).metadata.row_group(1).column(1)
    start = col.dictionary_page_offset or col.data_page_offset
    data = bytearray(p.read_bytes())
    data[start + 30 : start + col.total_compressed_size - 10] = b"\xab" * (col.total_compressed_size - 40)
    p.write_bytes(bytes(data))
    out = tmp_path / "run"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"input": {"paths": [str(raw)]}, "output": {"dir": str(out)}, "engine": {"name": "local"}}))
    assert main(["run", str(cfg)]) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())
    c = m["counts"]
    assert c["balanced"] and c["docs_in"] == 1 + 200 + 1  # the lost row group is one reject row
    assert c["records_lost"] == 99
    assert "at least 99 more records were in unreadable parts of the input" in printed
    assert m["inputs_skipped"]["count"] == 1
    (s,) = m["inputs_skipped"]["listed"]
    assert s["path"].endswith("link.jsonl") and s["reason"] == "symlink_outside_input"
    # the data card shows them beside in = kept + dropped
    assert main(["report", str(out)]) == 0
    card = json.loads((out / "report" / "datacard.json").read_text())
    assert card["totals"]["records_lost"] == 99 and card["totals"]["inputs_skipped"] == 1
    html = (out / "report" / "datacard.html").read_text()
    assert "At least 99 more records were in unreadable parts of the input" in html
