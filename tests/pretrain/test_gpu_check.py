"""`make gpu-check` in its dry mode (no GPU): meta-device plans of every preset, and the tiny preset
through the same run A / stop / resume (run B) code the GPU mode runs, with exact resumed losses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.pretrain.conftest import ROOT


def test_gpu_check_dry_mode(data_dir, tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", "--dry", "--data", str(data_dir),
                           "--work", str(tmp_path / "work"), "--json", str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    res = json.loads(out.read_text())
    assert res["mode"] == "dry" and res["ok"]
    assert set(res["meta_plans"]) == {"tiny", "125m", "1.3b", "8b"}
    assert all(p["counts_match"] for p in res["meta_plans"].values())
    tiny = res["runs"]["tiny"]
    assert tiny["resumed_at"] == 3 and tiny["resumed_losses_exact"]
    assert tiny["layer_spec"] == "local" and tiny["precision"] == "fp32"
    assert tiny["tokens_per_second_per_gpu"] > 0 and tiny["peak_memory_gib"] > 0
    assert "tok/s/GPU" in proc.stdout and "dry mode only" in proc.stdout
