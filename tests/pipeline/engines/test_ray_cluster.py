"""Run against a real multi-process Ray cluster on loopback: a head plus a worker node."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
    # short: Ray's unix sockets live under the temp dir and paths are limited to ~107 bytes
    ray_tmp = tempfile.mkdtemp(prefix="bmray", dir="/tmp")
    # Ray 2.60 enables token authentication on `ray start`; every process of the test cluster
    # (nodes, `ray status`, the driver) shares one throwaway token.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env.pop("RAY_ADDRESS", None)
    # a slow stage, importable by the nodes' workers, so that units spread over both actors
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "napmod.py").write_text(
        "import time\nfrom babelmill.pipeline.core.stage import Stage\n"
        "class Nap(Stage):\n    name = 'nap'\n"
        "    def process(self, batch):\n        time.sleep(1.5)\n        return batch\n"
    )
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "mods"), env.get("PYTHONPATH", "")])
    try:
        head = subprocess.Popen(
            [_ray_bin(), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
             "--include-dashboard=false", f"--temp-dir={ray_tmp}", *common],
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
            "stages": ["napmod:Nap", "langid"], "engine": {"name": "ray", "ray": {"concurrency": 2}},
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
        # SIGKILL the whole process group of each `ray start --block` (raylet, GCS, workers):
        # a graceful drain waits ~30 s per node for nothing in a throwaway test cluster.
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        shutil.rmtree(ray_tmp, ignore_errors=True)
