"""The job targets of the Makefile print their usage (exit 2) when a variable is missing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target, words", [
    ("curate", "CONFIG=run.yaml"),
    ("tokenizer", "INPUT=curated_dir OUTPUT=dir"),
    ("audit", "MODEL=dir BENCHMARK=file.jsonl JSON=out.json"),
])
def test_job_target_without_its_variables_prints_usage(target, words):
    r = subprocess.run(["make", "-s", "-C", str(ROOT), target], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"usage: make {target} {words}" in r.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_help_lists_the_job_targets():
    r = subprocess.run(["make", "-s", "-C", str(ROOT), "help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for target in ("curate", "tokenizer", "pretrain", "audit", "gpu-check"):
        assert f"make {target}" in r.stdout
