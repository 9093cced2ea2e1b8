"""A local Ray started by babelmill listens on loopback only and does not outlive its driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

DRIVER = textwrap.dedent(
    """
    import json, time
    import psutil, ray
    from babelmill.pipeline.config import RayConfig
    from babelmill.pipeline.engines.ray_engine import ensure_ray

    ensure_ray(RayConfig(num_cpus=1))
    ray.get(ray.remote(lambda: 1).remote())  # a worker process too
    time.sleep(1)  # agents are up
    procs, listening = [], []
    for p in psutil.Process().children(recursive=True):
        procs.append([p.pid, p.name()])
        try:
            listening += [[p.name(), c.laddr.ip] for c in p.net_connections("inet") if c.status == "LISTEN"]
        except psutil.Error:
            pass
    print(json.dumps({"procs": procs, "listening": listening}), flush=True)
    time.sleep(120)
    """
)


def _alive(pids):
    import psutil

    out = []
    for pid, name in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(name)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.ray
@pytest.mark.parametrize("sig", [signal.SIGTERM])
def test_local_ray_is_loopback_only_and_gone_after_sigterm(tmp_path, sig):
    pytest.importorskip("psutil")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    p = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True, env=env, cwd=tmp_path)
    info = None
    try:
        info = json.loads(p.stdout.readline())
        names = {n for _, n in info["procs"]}
        assert {"raylet", "gcs_server"} <= names, names
        # every listening socket of the session on loopback (Ray would otherwise resolve
        # 127.0.0.1 to the host's external address and bind GCS, raylet and agents there)
        external = [(n, ip) for n, ip in info["listening"] if ip not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")]
        assert info["listening"] and not external
        p.send_signal(sig)
        p.wait(timeout=30)
        deadline = time.time() + 10
        while _alive(info["procs"]) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(info["procs"]), "Ray processes outlived the driver"
    finally:
        if p.poll() is None:
            p.kill()
        for pid, _ in (info or {}).get("procs", []):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
