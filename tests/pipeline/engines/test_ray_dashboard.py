"""engine.ray.dashboard: true on a local Ray: the dashboard (and its job server) answers on
loopback, nothing of the session listens elsewhere, and the run says where it is."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import textwrap
import urllib.request

import pytest

DRIVER = textwrap.dedent(
    """
    import json, logging, time
    import psutil
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from babelmill.pipeline.config import RayConfig
    from babelmill.pipeline.engines.ray_engine import ensure_ray

    ensure_ray(RayConfig(num_cpus=1, dashboard=True))
    procs, listening = [], []
    for p in psutil.Process().children(recursive=True):
        procs.append(p.pid)
        try:
            listening += [c.laddr.ip for c in p.net_connections("inet") if c.status == "LISTEN"]
        except psutil.Error:
            pass
    print(json.dumps({"procs": procs, "listening": listening}), flush=True)
    time.sleep(120)
    """
)


def _readline(stream, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(stream, selectors.EVENT_READ)
    ready = sel.select(timeout)
    sel.close()
    return stream.readline() if ready else ""


@pytest.mark.slow
@pytest.mark.ray
def test_local_dashboard_on_loopback(tmp_path):
    pytest.importorskip("aiohttp", reason="the dashboard needs ray[default]")
    token = secrets.token_hex(16)
    # a throwaway token (Ray would otherwise write one to ~/.ray/auth_token)
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    err = tmp_path / "driver.err"
    with open(err, "w") as f:
        p = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, stderr=f, text=True,
                             env=env, cwd=tmp_path, start_new_session=True)
    info = None
    try:
        line = _readline(p.stdout, 180)
        assert line, f"driver did not come up:\n{err.read_text()[-3000:]}"
        info = json.loads(line)
        m = re.search(r"Ray dashboard at (http://\S+) while this run lasts \(loopback only", err.read_text())
        assert m, err.read_text()[-3000:]
        url = m.group(1)
        assert url.startswith("http://127.0.0.1:")
        external = [ip for ip in info["listening"] if ip not in ("127.0.0.1", "::ffff:127.0.0.1", "::1")]
        assert info["listening"] and not external
        # the job server answers, with the session's token
        req = urllib.request.Request(url + "/api/version", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read())["ray_version"] == "2.60.0"
    finally:
        import psutil

        left = []
        for pid in (info or {}).get("procs", []):
            with contextlib.suppress(psutil.Error):
                left.append(psutil.Process(pid))
        p.send_signal(signal.SIGTERM)  # the driver shuts its Ray down
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=30)
        _, alive = psutil.wait_procs(left, timeout=10)
        for q in alive:
            with contextlib.suppress(psutil.Error):
                q.kill()


def test_missing_dashboard_packages_names_each_module(monkeypatch):
    import importlib.util

    from babelmill.pipeline.engines import ray_engine

    find_spec = importlib.util.find_spec

    def without_opentelemetry(name, *a):
        if name.split(".")[0] == "opentelemetry":
            if "." in name:  # what find_spec does when a parent package is missing
                raise ModuleNotFoundError(f"No module named {name.split('.')[0]!r}")
            return None
        return find_spec(name, *a)

    monkeypatch.setattr(importlib.util, "find_spec", without_opentelemetry)
    assert ray_engine.missing_dashboard_packages() == ["opentelemetry.exporter.prometheus", "opentelemetry.proto"]
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert ray_engine.missing_dashboard_packages() == []  # ray[default] is pinned in requirements.txt
