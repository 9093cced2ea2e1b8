"""Tiny multilingual corpus, BPE tokenizer and preprocessed DATA_DIR shared by the pretrain tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from babelmill.paths import config_file
from testing import pretrain_corpus

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TINY = config_file("pretrain", "tiny.yaml")


@pytest.fixture(scope="session")
def tokenizer_json(tmp_path_factory) -> Path:
    return pretrain_corpus.train_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.json", vocab_size=400)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    return pretrain_corpus.write_corpus(tmp_path_factory.mktemp("corpus"), docs_per_lang=80, layout="jsonl")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, corpus, tokenizer_json) -> Path:
    from babelmill.pretrain.data.preprocess import preprocess

    out = tmp_path_factory.mktemp("data")
    preprocess([corpus], tokenizer_json, out, workers=1)
    return out


N_STEPS = 12


@pytest.fixture(scope="session")
def small_config(tmp_path_factory) -> Path:
    """tiny.yaml with short intervals so a dozen steps exercise eval, checkpoints and pruning."""
    return write_yaml(tmp_path_factory.mktemp("cfg") / "tiny_test.yaml", TINY, **{
        "train.train_iters": N_STEPS, "optimizer.warmup_iters": 3, "train.eval_interval": 6,
        "train.log_interval": 3, "checkpoint.save_interval": 4, "checkpoint.keep_last": 3})


@pytest.fixture(scope="session")
def straight_run(tmp_path_factory, small_config, data_dir) -> Path:
    """N_STEPS trained in one go (one process); the reference for resume/corruption/inference."""
    save = tmp_path_factory.mktemp("straight") / "run"
    run_cli("train", "--config", str(small_config), "--data", str(data_dir), "--save", str(save))
    return save


def run_cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `python -m babelmill.pretrain.cli ...` in a fresh process (own process group)."""
    e = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", **(env or {}))
    proc = subprocess.run([PY, "-m", "babelmill.pretrain.cli", *args], capture_output=True, text=True,
                          env=e, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        raise AssertionError(f"cli {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def losses(save_dir: Path) -> dict[int, float]:
    from babelmill.pretrain.metrics import read_metrics

    return {r["iteration"]: r["loss"] for r in read_metrics(save_dir) if "loss" in r}


def write_yaml(path: Path, base: Path, **overrides) -> Path:
    """Copy `base` YAML with dotted-key overrides applied."""
    import yaml

    data = yaml.safe_load(base.read_text())
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))
    return path


def cli_json(proc: subprocess.CompletedProcess) -> dict:
    """The JSON summary `pretrain train` prints last."""
    out = proc.stdout
    return json.loads(out[out.index("\n{") + 1 if "\n{" in out else out.index("{"):])
