"""Data parallel world size 2 (torchrun, gloo on loopback): trains, checkpoints, resumes.

With micro-batch 4 on each of 2 ranks, a step sees the same 8 samples as the single-process
reference run (micro-batch 8) and averages the same per-token losses, so the losses agree up to
float rounding - before and after the resume.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from babelmill.pretrain.distributed import free_port
from tests.pretrain.conftest import N_STEPS, ROOT, losses, write_yaml


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "-m", "babelmill.pretrain.cli", *args]
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, f"torchrun failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    return proc


def test_two_ranks_train_and_resume(tmp_path, data_dir, small_config, straight_run):
    cfg = write_yaml(tmp_path / "dp2.yaml", small_config, **{"train.micro_batch_size": 4})
    save = tmp_path / "dp2"
    common = ["train", "--config", str(cfg), "--data", str(data_dir), "--save", str(save)]
    torchrun(*common, "--exit-after", str(N_STEPS // 2))
    ck = save / f"iter_{N_STEPS // 2:07d}"
    assert sorted(p.name for p in (ck / "rng").iterdir()) == ["rank0.pt", "rank1.pt"]
    proc = torchrun(*common)
    assert f"resumed from {ck}" in proc.stderr  # logged (INFO) on rank 0

    ref, dp = losses(straight_run), losses(save)
    assert sorted(dp) == list(range(1, N_STEPS + 1))
    for it in range(1, N_STEPS + 1):
        assert dp[it] == pytest.approx(ref[it], rel=1e-4), f"iteration {it}: {dp[it]} vs {ref[it]}"
