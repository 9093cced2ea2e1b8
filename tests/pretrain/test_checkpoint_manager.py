"""The checkpoint manager's side of a save: its policy, and how a dict of stateful objects maps
onto trainer_state.json (the sharded files and their safety are test_checkpoint_safety's and
test_corrupt_checkpoint's, through real runs)."""

from __future__ import annotations

import json

from babelmill.pretrain import checkpoint as ck
from babelmill.pretrain.loop import TrainProgress


class _Sched:
    """A scheduler-like stateful object (megatron's OptimizerParamScheduler's interface)."""

    def __init__(self, num_steps=0):
        self.num_steps = num_steps

    def state_dict(self):
        return {"num_steps": self.num_steps}

    def load_state_dict(self, state_dict):
        self.num_steps = state_dict["num_steps"]


def _manager(tmp_path, interval=4, **states):
    progress = TrainProgress(train_iters=12)
    mgr = ck.CheckpointManager(
        tmp_path, keep_last=2, checksum="size", interval=interval,
        states={"model": [], "optimizer": None, "scheduler": _Sched(), "rng": ck.RNGState(),
                "train": progress, **states},
        metadata={"vocab_size": 512, "config": {"model": {}}, "tokenizer": "tokenizer.json"})
    saved = []

    def save(iteration, model_chunks, optimizer, trainer_state, tokenizer_json=None, rng=None):
        saved.append((iteration, trainer_state))
        mgr.last_saved_iteration = iteration
        return tmp_path / ck.iter_name(iteration)

    mgr.save = save  # the policy only: what a real save writes is tested through real runs
    return mgr, progress, saved


def test_maybe_save_follows_interval_and_force_never_twice(tmp_path):
    mgr, progress, saved = _manager(tmp_path, interval=4)
    for step in range(1, 10):
        progress.iteration = step
        mgr.maybe_save(step)
    assert [s for s, _ in saved] == [4, 8]
    assert mgr.maybe_save(8, force=True) is None  # the end of a run at a step just saved
    assert mgr.maybe_save(9, force=True) == tmp_path / ck.iter_name(9)
    assert [s for s, _ in saved] == [4, 8, 9]


def test_trainer_state_layout_from_states(tmp_path):
    """`train` at the top level, other JSON states under their names, metadata last: the
    trainer_state.json layout resume, export and inference read."""
    mgr, progress, _ = _manager(tmp_path)
    progress.iteration, progress.consumed_samples = 8, 64
    mgr.states["scheduler"].num_steps = 8
    assert list(mgr.trainer_state()) == ["iteration", "consumed_samples", "train_iters", "scheduler",
                                        "vocab_size", "config", "tokenizer"]
    assert mgr.trainer_state()["scheduler"] == {"num_steps": 8}
    assert mgr.trainer_state()["consumed_samples"] == 64


def test_json_states_restore_and_weights_only_keeps_fresh_scheduler(tmp_path):
    mgr, progress, _ = _manager(tmp_path)
    mgr._restore_json_states({"iteration": 8, "consumed_samples": 64, "train_iters": 12,
                              "scheduler": {"num_steps": 8}})
    assert (progress.iteration, progress.consumed_samples, mgr.states["scheduler"].num_steps) == (8, 64, 8)
    mgr, progress, _ = _manager(tmp_path)
    mgr._restore_json_states({"iteration": 0, "consumed_samples": 0, "weights_only": True})  # an import
    assert mgr.states["scheduler"].num_steps == 0 and progress.iteration == 0


def _fake_ckpt(save, it, good=True):
    d = save / ck.iter_name(it)
    d.mkdir(parents=True)
    (d / "w.bin").write_bytes(b"x" * 10)
    (d / ck.MANIFEST).write_text(json.dumps({"files": {"w.bin": {"size": 10 if good else 99}}}))
    return d


def test_one_fallback_loop_skips_and_collects_what_it_passes_over(tmp_path):
    """Training's load and export/inference share the loop: newest verifiable first, every
    broken one reported; training's retries skip names and collect the reasons."""
    for it, good in ((4, True), (8, True), (12, False)):
        _fake_ckpt(tmp_path, it, good)
    (tmp_path / ck.LATEST).write_text(ck.iter_name(12))
    msgs, skip, rejected = [], set(), {}
    found = ck.first_verified(tmp_path, report=msgs.append, skip=skip, rejected=rejected)
    assert found.name == ck.iter_name(8)
    assert skip == {ck.iter_name(12)} and list(rejected) == [str(tmp_path / ck.iter_name(12))]
    assert "falling back to the previous checkpoint iter_0000008" in msgs[0]
    skip.add(ck.iter_name(8))  # it verified but failed to load: the next try passes it over
    assert ck.first_verified(tmp_path, report=msgs.append, skip=skip, rejected=rejected).name == ck.iter_name(4)
    assert ck.find_loadable(tmp_path, report=msgs.append).name == ck.iter_name(8)
