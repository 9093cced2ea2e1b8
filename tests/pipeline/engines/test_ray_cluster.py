"""Run against a real multi-process Ray cluster on loopback: a head plus a worker node."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else shutil.which("ray")


@pytest.mark.slow
@pytest.mark.ray
def test_pipeline_on_local_multinode_cluster(tmp_path, corpus_factory):
    corpus = corpus_factory(tmp_path, files=4, docs_per_lang=1)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus=1", "--disable-usage-stats"]
    procs = []
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    try:
        head = subprocess.Popen(
            [_ray_bin(), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", f"--temp-dir={tmp_path / 'ray'}", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        procs.append(head)
        deadline = time.time() + 90
        while subprocess.run([_ray_bin(), "status", f"--address={address}"], env=env,
                             capture_output=True).returncode != 0:
            assert time.time() < deadline, "ray head did not come up"
            assert head.poll() is None, "ray head exited"
            time.sleep(1)
        worker = subprocess.Popen(
            [_ray_bin(), "start", f"--address={address}", "--node-ip-address=127.0.0.1", *common],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        procs.append(worker)
        while True:
            st = subprocess.run([_ray_bin(), "status", f"--address={address}"], env=env, capture_output=True, text=True)
            if st.stdout.count("node_") >= 2:
                break
            assert time.time() < deadline, f"worker node did not join:\n{st.stdout}"
            time.sleep(1)

        out = tmp_path / "out"
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({
            "name": "cluster", "input": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
            "stages": ["langid"], "engine": {"name": "ray", "ray": {"concurrency": 2}},
        }))
        run = subprocess.run([sys.executable, "-m", "babelmill.cli", "run", str(cfg)],
                             env={**env, "RAY_ADDRESS": address}, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        m = json.loads((out / "manifest.json").read_text())
        assert m["engine"] == "ray" and m["counts"]["balanced"]
        assert m["units"]["total"] == 4
        workers = {json.loads(p.read_text())["worker"] for p in (out / "units").glob("*.json")}
        assert len(workers) == 2, f"expected both nodes' actors to work, got {workers}"
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
