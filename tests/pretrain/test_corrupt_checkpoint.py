"""A truncated or half-written newest checkpoint is reported by name and the previous one is used."""

from __future__ import annotations

import shutil

from babelmill.pretrain import checkpoint as ck
from tests.pretrain.conftest import N_STEPS, cli_json, losses, run_cli


def _copy(run, dst):
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("data_cache"))
    return dst


def test_truncated_checkpoint_falls_back_to_previous(tmp_path, data_dir, small_config, straight_run):
    save = _copy(straight_run, tmp_path / "run")
    newest = save / f"iter_{N_STEPS:07d}"
    shard = max(newest.glob("*.distcp"), key=lambda p: p.stat().st_size)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])  # a crash mid-write / a damaged disk
    assert "truncated" in ck.verify(newest)

    # resume to N_STEPS: must restart from iter 8 and re-train steps 9..12 identically
    proc = run_cli("train", "--config", str(small_config), "--data", str(data_dir), "--save", str(save))
    out = cli_json(proc)
    # a warning of the checkpoint module's logger: on stderr (stdout holds the JSON result)
    assert f"checkpoint {newest} is corrupt" in proc.stderr
    assert f"falling back to the previous checkpoint iter_{8:07d}" in proc.stderr
    assert out["resumed_from"].endswith(f"iter_{8:07d}")
    ref, again = losses(straight_run), losses(save)
    assert [again[i] for i in range(9, N_STEPS + 1)] == [ref[i] for i in range(9, N_STEPS + 1)]
    assert ck.verify(save / f"iter_{N_STEPS:07d}") is None  # re-saved cleanly


def test_partial_save_and_bad_marker_are_never_loaded(tmp_path, straight_run):
    save = _copy(straight_run, tmp_path / "run")
    # an interrupted save leaves only a .partial dir; `latest` still names the last complete one
    (save / "iter_9999999.partial").mkdir()
    assert ck.candidates(save)[0].name == f"iter_{N_STEPS:07d}"
    # a checkpoint without its manifest (killed before finalising) is skipped with a message
    (save / f"iter_{N_STEPS:07d}" / ck.MANIFEST).unlink()
    msgs = []
    assert ck.find_loadable(save, report=msgs.append).name == f"iter_{8:07d}"
    assert msgs and f"iter_{N_STEPS:07d}" in msgs[0] and "manifest.json is missing" in msgs[0]
