"""Checkpoints from elsewhere cannot run code; broken or foreign save dirs stop a run instead of
being silently restarted or overwritten (issue 12: cases 1, 3, 6, 9, 11b, 12).

Training and audits run in this process through the CLI entry points where they stop before the
first step (a megatron import per subprocess costs ~10 s); the payload tests use a real
checkpoint of the session's straight run, altered the way an attacker would (manifest included).
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys

import pytest

from babelmill.pretrain import checkpoint as ck
from tests.pretrain.conftest import N_STEPS, PY, ROOT, write_yaml

NEWEST = f"iter_{N_STEPS:07d}"


# ---------------------------------------------------------------- helpers

class _Touch:
    """Unpickling this runs code that creates a file (what a crafted checkpoint would do)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def _copy_run(run, dst):
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("data_cache", "tensorboard"))
    return dst


def _rewrite_manifest(ckpt):
    """An attacker writes a manifest that matches the altered files."""
    files = {}
    for p in sorted(ckpt.rglob("*")):
        if p.is_file() and p.name != ck.MANIFEST:
            files[p.relative_to(ckpt).as_posix()] = {"size": p.stat().st_size, "sha256": ck._sha256(p)}
    (ckpt / ck.MANIFEST).write_text(json.dumps({"files": files}))
    assert ck.verify(ckpt) is None


def _metadata(ckpt):
    """The metadata of one of our own (trusted) checkpoints, to alter."""
    from torch.distributed.checkpoint import FileSystemReader

    return FileSystemReader(str(ckpt)).read_metadata()


def _poison_metadata(ckpt, marker):
    """A valid Metadata that also carries the payload (plain pickle runs it, then loads fine)."""
    md = _metadata(ckpt)
    md.storage_meta.modules = [_Touch(marker)]
    (ckpt / ".metadata").write_bytes(pickle.dumps(md))
    _rewrite_manifest(ckpt)


def _poison_bytes_item(ckpt, marker):
    """Leave .metadata clean, but point an `_extra_state` bytes item at a pickle that runs code:
    torch's DefaultLoadPlanner.load_bytes reads bytes items with torch.load(weights_only=False)."""
    import torch
    from torch.distributed.checkpoint.filesystem import _StorageInfo

    md = _metadata(ckpt)
    buf = io.BytesIO()
    torch.save([_Touch(marker)], buf)
    (ckpt / "__0_9.distcp").write_bytes(buf.getvalue())
    keys = [k for k in md.storage_data if "_extra_state" in k.fqn]
    assert keys
    for k in keys:
        md.storage_data[k] = _StorageInfo("__0_9.distcp", 0, len(buf.getvalue()))
    (ckpt / ".metadata").write_bytes(pickle.dumps(md))
    _rewrite_manifest(ckpt)


def _cli(capsys, *args) -> tuple[int, str, str]:
    """`babelmill pretrain ...` in this process; (exit code, stdout, stderr)."""
    from babelmill.pretrain.cli import main

    capsys.readouterr()
    try:
        rc = main(list(args))
    except BaseException as e:  # noqa: BLE001 - the bug being tested may raise a BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        out = capsys.readouterr()
        raise AssertionError(f"CLI raised {type(e).__name__}: {e}\n{out.out}\n{out.err}") from None
    out = capsys.readouterr()
    return rc, out.out, out.err


def _benchmark(path):
    rows = [{"id": f"q{i}", "lang": "en", "question": f"river water {i}?",
             "choices": ["yes", "no", "the report", "committee"], "gold": i % 4} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ---------------------------------------------------------------- case 1: code execution

def test_audit_cli_refuses_metadata_payload(tmp_path, straight_run):
    """`babelmill audit --model <checkpoint>`: the payload file never appears, exit 2, one line."""
    save = _copy_run(straight_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    _poison_metadata(save / NEWEST, marker)
    bench = _benchmark(tmp_path / "bench.jsonl")
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run([PY, "-m", "babelmill.cli", "audit", "--model", str(save), "--benchmark", str(bench),
                           "--json", str(tmp_path / "out.json")], capture_output=True, text=True, env=env,
                          timeout=300, cwd=ROOT)
    assert not marker.exists(), "the checkpoint ran code"
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(err) == 1 and "unsafe checkpoint" in err[0] and f"{NEWEST}/.metadata" in err[0], proc.stderr
    assert "builtins.exec" in err[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_bytes_item_payload_is_refused(tmp_path, straight_run):
    """A clean .metadata whose bytes item is a code-running pickle (the load_bytes path)."""
    from babelmill.pretrain.inference import MegatronLM
    from babelmill.pretrain.safe_load import UnsafeCheckpointError, safe_reader_class

    ckpt = _copy_run(straight_run / NEWEST, tmp_path / NEWEST)
    marker = tmp_path / "PWNED"
    _poison_bytes_item(ckpt, marker)
    used = safe_reader_class().used
    with pytest.raises(UnsafeCheckpointError, match="not a plain-data torch file"):
        MegatronLM(str(ckpt))
    assert not marker.exists(), "the checkpoint ran code"
    assert safe_reader_class().used > used  # megatron's load went through the safe reader


def test_common_pt_payload_is_refused_even_when_torch_defaults_to_pickle(tmp_path, straight_run, monkeypatch):
    """megatron loads common.pt with torch's default; TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD makes that
    plain pickle. babelmill passes weights_only=True explicitly."""
    import torch

    from babelmill.pretrain.inference import MegatronLM
    from babelmill.pretrain.safe_load import UnsafeCheckpointError

    ckpt = _copy_run(straight_run / NEWEST, tmp_path / NEWEST)
    marker = tmp_path / "PWNED"
    common = torch.load(ckpt / "common.pt", weights_only=True)
    common["payload"] = _Touch(marker)
    torch.save(common, ckpt / "common.pt")
    _rewrite_manifest(ckpt)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UnsafeCheckpointError, match="common.pt"):
        MegatronLM(str(ckpt))
    assert not marker.exists(), "the checkpoint ran code"


def test_non_empty_extra_state_is_refused(tmp_path, straight_run):
    """Transformer Engine unpickles a non-empty `_extra_state`; babelmill checkpoints have none."""
    import torch
    from torch.distributed.checkpoint.filesystem import _StorageInfo

    from babelmill.pretrain.inference import MegatronLM
    from babelmill.pretrain.safe_load import UnsafeCheckpointError

    ckpt = _copy_run(straight_run / NEWEST, tmp_path / NEWEST)
    md = _metadata(ckpt)
    buf = io.BytesIO()
    torch.save([torch.frombuffer(bytearray(b"\x80\x04N."), dtype=torch.uint8)], buf)  # a pickle, as TE stores it
    (ckpt / "__0_9.distcp").write_bytes(buf.getvalue())
    for k in [k for k in md.storage_data if "_extra_state" in k.fqn]:
        md.storage_data[k] = _StorageInfo("__0_9.distcp", 0, len(buf.getvalue()))
    (ckpt / ".metadata").write_bytes(pickle.dumps(md))
    _rewrite_manifest(ckpt)
    with pytest.raises(UnsafeCheckpointError, match="_extra_state"):
        MegatronLM(str(ckpt))


def test_metadata_unpickler_allows_real_metadata_only(straight_run):
    from babelmill.pretrain.safe_load import UnsafeCheckpointError, loads_metadata

    md = _metadata(straight_run / NEWEST)
    assert md.state_dict_metadata  # a real checkpoint's metadata passes
    for evil in (pickle.dumps(_Touch("/nonexistent/x")), pickle.dumps(os.system), pickle.dumps({"a": print})):
        with pytest.raises(UnsafeCheckpointError, match="refused"):
            loads_metadata(evil, "x/.metadata")
    md.storage_data[next(iter(md.storage_data))].relative_path = "../../etc/passwd"
    with pytest.raises(UnsafeCheckpointError, match="outside the checkpoint"):
        loads_metadata(pickle.dumps(md), "x/.metadata")


def test_training_resume_stops_on_unsafe_checkpoint(tmp_path, capsys, caplog, data_dir, small_config,
                                                    straight_run):
    """No fallback to the older checkpoint, not counted as corrupt, nothing renamed, exit 2 -
    with --restart too."""
    caplog.set_level(logging.INFO, logger="babelmill")  # the run's messages are logged, not printed
    save = _copy_run(straight_run, tmp_path / "run")
    marker = tmp_path / "PWNED"
    _poison_metadata(save / NEWEST, marker)
    before = (save / "run_config.json").read_text()
    common = ["train", "--config", str(small_config), "--data", str(data_dir), "--save", str(save)]
    for extra in ([], ["--restart"]):
        rc, out, err = _cli(capsys, *common, *extra)
        assert not marker.exists(), "the checkpoint ran code"
        assert rc == 2
        assert err.startswith("babelmill: error: unsafe checkpoint:") and err.count("\n") == 1 and NEWEST in err, err
        assert "falling back" not in out and "resumed from" not in out
        assert "falling back" not in caplog.text and "resumed from" not in caplog.text
        assert (save / NEWEST).is_dir() and not list(save.glob("*.corrupt*"))
        assert (save / "run_config.json").read_text() == before


# ---------------------------------------------------------------- case 3: a run that can never resume

def _break_all(save):
    for c in ck.complete_checkpoints(save):
        shard = max(c.glob("*.distcp"), key=lambda p: p.stat().st_size)
        shard.write_bytes(shard.read_bytes()[:100])


def test_all_corrupt_stops_unless_restart(tmp_path, capsys, caplog, data_dir, small_config, straight_run):
    caplog.set_level(logging.INFO, logger="babelmill")  # the run's messages are logged, not printed
    save = _copy_run(straight_run, tmp_path / "run")
    _break_all(save)
    metrics = (save / "metrics.jsonl").read_text()
    common = ["train", "--config", str(small_config), "--data", str(data_dir), "--save", str(save)]

    rc, out, err = _cli(capsys, *common)
    assert rc == 2 and err.count("\n") == 1
    assert "none can be loaded" in err and "--restart" in err
    assert all(f"iter_{i:07d}" in err for i in (4, 8, 12)), err
    assert (save / "metrics.jsonl").read_text() == metrics  # nothing truncated, nothing renamed
    assert sorted(p.name for p in save.glob("iter_*")) == [f"iter_{i:07d}" for i in (4, 8, 12)]

    rc, out, err = _cli(capsys, *common, "--restart")
    assert rc == 0, err
    assert json.loads(out[out.index("{"):])["resumed_from"] is None  # stdout: the JSON result only
    assert "can be loaded; starting over from iteration 0" in caplog.text
    assert all(f"iter_{i:07d}.corrupt (not loadable" in caplog.text for i in (4, 8, 12))
    assert (save / "metrics.jsonl.1").read_text() == metrics  # the old record is kept
    assert sorted(p.name for p in save.glob("iter_*.corrupt")) == [f"iter_{i:07d}.corrupt" for i in (4, 8, 12)]
    # the new checkpoints survive keep-last-K (the broken ones used to evict each new one at once)
    assert sorted(p.name for p in ck.complete_checkpoints(save)) == [f"iter_{i:07d}" for i in (4, 8, 12)]
    assert all(ck.verify(c) is None for c in ck.complete_checkpoints(save))
    assert (save / "latest").read_text().strip() == NEWEST


def _fake_ckpt(save, it, good=True, partial=False):
    d = save / (ck.iter_name(it) + (".partial" if partial else ""))
    d.mkdir(parents=True)
    (d / "w.bin").write_bytes(b"x" * 10)
    if not partial:
        (d / ck.MANIFEST).write_text(json.dumps({"files": {"w.bin": {"size": 10 if good else 99}}}))
    return d


def test_prune_never_counts_broken_or_higher_numbered_checkpoints(tmp_path):
    save = tmp_path / "run"
    newer_broken = [_fake_ckpt(save, it, good=False) for it in (12, 16, 20)]  # >= keep_last of them
    old = [_fake_ckpt(save, 1), _fake_ckpt(save, 2, good=False)]
    kept = [_fake_ckpt(save, 3), _fake_ckpt(save, 4)]
    saved = save / ck.iter_name(5)
    ck.CheckpointManager(save, keep_last=3, checksum="size")._finalize(_fake_ckpt(save, 5, partial=True), saved)
    assert saved.is_dir(), "the new checkpoint was pruned because of higher-numbered broken ones"
    assert all(p.is_dir() for p in kept + newer_broken)
    assert not any(p.exists() for p in old)
    assert (save / "latest").read_text().strip() == saved.name


# ---------------------------------------------------------------- case 6: --save destroys user files

def test_save_dir_with_foreign_files_is_refused(tmp_path, capsys, data_dir, small_config, tokenizer_json):
    save = tmp_path / "mine"
    save.mkdir()
    (save / "tokenizer.json").write_text('{"mine": true}')
    (save / "metrics.jsonl").write_text('{"my": "metrics"}\n')
    (save / "notes.txt").write_text("keep me")
    rc, out, err = _cli(capsys, "train", "--config", str(small_config), "--data", str(data_dir),
                        "--save", str(save))
    assert rc == 2 and "holds files babelmill did not write" in err and "tokenizer.json" in err, err
    assert (save / "tokenizer.json").read_text() == '{"mine": true}'
    assert (save / "metrics.jsonl").read_text() == '{"my": "metrics"}\n'
    assert sorted(p.name for p in save.iterdir()) == ["metrics.jsonl", "notes.txt", "tokenizer.json"]


def test_save_dir_of_another_configuration_is_refused(tmp_path, capsys, data_dir, small_config, straight_run):
    save = _copy_run(straight_run, tmp_path / "run")
    other = write_yaml(tmp_path / "wider.yaml", small_config, **{"model.hidden_size": 96})
    files = {n: (save / n).read_bytes() for n in ("run_config.json", "tokenizer.json", "metrics.jsonl")}
    rc, out, err = _cli(capsys, "train", "--config", str(other), "--data", str(data_dir), "--save", str(save))
    assert rc == 2 and "another configuration" in err and "model.hidden_size" in err, err
    assert {n: (save / n).read_bytes() for n in files} == files


def test_same_run_check_allows_schedule_changes(tmp_path, straight_run):
    from babelmill.pretrain.savedir import SaveDirError, check_owned, check_same_run

    run = json.loads((straight_run / "run_config.json").read_text())
    check_owned(straight_run)
    longer = json.loads(json.dumps(run))
    longer["config"]["train"]["train_iters"] *= 2
    longer["config"]["optimizer"]["lr"] /= 2
    check_same_run(straight_run, longer)  # a longer schedule resumes, as the demo does
    other = json.loads(json.dumps(run))
    other["tokenizer_sha256"] = "0" * 64
    with pytest.raises(SaveDirError, match="different tokenizer"):
        check_same_run(straight_run, other)


def test_demo_run_dir_is_accepted(tmp_path):
    from babelmill.pretrain.savedir import check_owned
    from demo.pretrain import fresh_run_for

    run = tmp_path / "run"
    fresh_run_for({"inputs_fingerprint": "x", "tokenizer": {"sha256": "y"}}, run)
    check_owned(run)  # data_key.txt is the demo's own file in a dir it marked


# ---------------------------------------------------------------- case 9: CheckpointException

def test_mismatched_save_without_run_config_stops_cleanly(tmp_path, capsys, data_dir, small_config, straight_run):
    """torch's CheckpointException (a BaseException) is caught; run files are written only after a
    successful load, so the mismatched save dir keeps no run_config.json of the wrong run."""
    save = _copy_run(straight_run, tmp_path / "run")
    (save / "run_config.json").unlink()  # a save dir from another tool/version: no config to compare
    other = write_yaml(tmp_path / "wider.yaml", small_config, **{"model.hidden_size": 96})
    rc, out, err = _cli(capsys, "train", "--config", str(other), "--data", str(data_dir), "--save", str(save))
    assert rc == 2 and "none can be loaded" in err and "could not be loaded" in err, err
    assert not (save / "run_config.json").exists()
    assert sorted(p.name for p in save.glob("iter_*")) == [f"iter_{i:07d}" for i in (4, 8, 12)]


# ---------------------------------------------------------------- case 11b: loopback store

_LISTENERS = r"""
import os, sys
def listening(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
                out.append(f[1].split(":")[0])
    return out
"""

LOOPBACK_HEX = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1, ::1 as /proc/net shows them


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_standalone_process_group_listens_on_loopback_only():
    code = _LISTENERS + """
from babelmill.pretrain.distributed import init_process_group
init_process_group()
print("LISTEN", " ".join(listening(os.getpid())))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")}
    proc = subprocess.run([PY, "-c", code], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    addrs = proc.stdout.split("LISTEN", 1)[1].split()
    assert addrs and set(addrs) <= LOOPBACK_HEX, addrs


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux /proc")
def test_single_node_torchrun_store_listens_on_loopback_only(tmp_path):
    from babelmill.pretrain.distributed import free_port

    worker = tmp_path / "worker.py"
    worker.write_text(_LISTENERS + 'print("AGENT", " ".join(listening(os.getppid())), flush=True)\n')
    proc = subprocess.run([PY, "-m", "babelmill.pretrain.torchrun_local", "--nnodes", "1", "--nproc-per-node", "1",
                           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), str(worker)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    addrs = proc.stdout.split("AGENT", 1)[1].split()
    assert addrs and set(addrs) <= LOOPBACK_HEX, addrs


# ---------------------------------------------------------------- case 12: truncated shard

def test_truncated_bin_shard_is_one_line_exit_2(tmp_path, capsys, data_dir, small_config):
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    shard = sorted(data.rglob("*.bin"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    rc, out, err = _cli(capsys, "train", "--config", str(small_config), "--data", str(data),
                        "--save", str(tmp_path / "run"))
    assert rc == 2 and err.count("\n") == 1, err
    assert str(shard) in err and "truncated" in err
    from babelmill.pretrain.savedir import check_owned

    assert check_owned(tmp_path / "run") == "ours"  # an interrupted first run is still resumable


def test_audit_of_corrupt_checkpoint_is_one_line_exit_2(tmp_path, capsys, straight_run):
    """CheckpointError from a megatron model lands as exit 2 with one line (contamination/cli.py)."""
    from babelmill.contamination.cli import main

    ckpt = _copy_run(straight_run / NEWEST, tmp_path / NEWEST)
    (ckpt / ck.MANIFEST).unlink()
    rc = main(["--model", str(ckpt), "--benchmark", str(_benchmark(tmp_path / "b.jsonl")),
               "--json", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "babelmill: error:" in err and "no complete checkpoint" in err, err
    assert sys.modules.get("babelmill.pretrain.checkpoint") is not None


def test_planted_data_cache_pickle_is_refused(tmp_path, capsys, data_dir, small_config, straight_run):
    """megatron reads --save/data_cache/*.npy with numpy.load(allow_pickle=True): a pickle there
    would run on resume."""
    save = tmp_path / "run"
    shutil.copytree(straight_run, save, ignore=shutil.ignore_patterns("tensorboard"))
    marker = tmp_path / "PWNED"
    for cached in (save / "data_cache").glob("*GPTDataset-train-document_index.npy"):
        cached.write_bytes(pickle.dumps(_Touch(marker)))
    rc, out, err = _cli(capsys, "train", "--config", str(small_config), "--data", str(data_dir),
                        "--save", str(save))
    assert not marker.exists(), "the data cache ran code"
    assert rc == 2 and err.startswith("babelmill: error: unsafe data cache:") and "document_index.npy" in err, err
