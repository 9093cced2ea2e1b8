"""A throwaway multi-node Ray cluster on loopback, made the way cluster users make one: a head
(`ray start --head`) and worker nodes (`ray start --address`), each `ray start --block` in its
own process group, every port chosen free, token authentication on (one throwaway token).

Used by test_ray_cluster.py (a driver started here) and test_ray_job_submit.py (a job submitted
through the head's dashboard). Cleanup kills every process the nodes started, including the
Ray workers and job drivers that run in their own process groups or sessions.
"""

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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_bin() -> str:
    exe = Path(sys.executable).with_name("ray")
    return str(exe) if exe.exists() else shutil.which("ray")


@dataclass
class LoopbackCluster:
    address: str  # GCS address, host:port
    env: dict  # environment of the nodes: what a client (driver, `ray job ...`) needs too
    temp_dir: str
    dashboard_url: str | None = None
    procs: list = field(default_factory=list)
    node_logs: list = field(default_factory=list)

    def ray(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        """`ray ARGS` with the cluster's environment (token included), output captured."""
        return subprocess.run([ray_bin(), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, **kw)

    def _get(self, path: str, timeout: float = 10):
        """GET a dashboard API path, with the cluster's token; the decoded JSON."""
        req = urllib.request.Request(self.dashboard_url + path,
                                     headers={"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def job_info(self, submission_id: str) -> dict:
        """The job server's record of a job (status, entrypoint, ...), as `ray job status` reads it."""
        return self._get(f"/api/jobs/{submission_id}")

    def logs_tail(self, lines: int = 30) -> str:
        """The end of each node's `ray start` output and of the head's main logs (for failures)."""
        logs = Path(self.temp_dir) / "session_latest" / "logs"
        paths = [*self.node_logs, *(logs / n for n in ("gcs_server.out", "raylet.out", "dashboard.log",
                                                        "dashboard_agent.log", "runtime_env_agent.log"))]
        paths += sorted(logs.glob("job-driver-*.log"))
        out = []
        for p in paths:
            with contextlib.suppress(OSError):
                tail = Path(p).read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {p}\n" + "\n".join(tail))
        return "\n".join(out)


def _wait(what: str, ok, deadline: float, cluster: LoopbackCluster) -> None:
    while not ok():
        for p in cluster.procs:
            if p.poll() is not None:
                raise AssertionError(f"{what}: a `ray start` exited ({p.returncode})\n{cluster.logs_tail()}")
        if time.time() > deadline:
            raise AssertionError(f"{what}: timed out\n{cluster.logs_tail()}")
        time.sleep(0.5)


def _nodes_alive(cluster: LoopbackCluster, n: int) -> bool:
    if cluster.dashboard_url:  # the state API: cheaper than a `ray status` process per poll
        try:
            nodes = cluster._get("/api/v0/nodes")["data"]["result"]["result"]
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return False
        return sum(node.get("state") == "ALIVE" for node in nodes) >= n
    try:
        st = cluster.ray("status", f"--address={cluster.address}", timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return st.returncode == 0 and st.stdout.count("node_") >= n


def _kill_all(procs: list) -> None:
    """SIGKILL each `ray start --block` with everything below it: a graceful drain waits ~30 s
    per node for nothing in a throwaway cluster. Ray workers have their own process groups and
    job drivers their own sessions, so the process tree is collected first."""
    victims = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            victims += psutil.Process(p.pid).children(recursive=True)
    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
    for v in victims:
        with contextlib.suppress(psutil.Error):
            v.kill()
    for p in procs:
        p.wait(timeout=30)
    psutil.wait_procs(victims, timeout=30)


@contextlib.contextmanager
def loopback_cluster(workers: int = 1, num_cpus: int = 1, dashboard: bool = False, extra_env: dict | None = None,
                     timeout: float = 120):
    """Yield a LoopbackCluster of a head and `workers` worker nodes, all alive (and the head's
    dashboard answering when `dashboard`); everything is killed on exit, failure included."""
    # short: Ray's unix sockets live under the temp dir and paths are limited to ~107 bytes
    temp_dir = tempfile.mkdtemp(prefix="bmray", dir="/tmp")
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           # as with the virtualenv activated: jobs' entrypoints find `babelmill` and this python
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
           **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    cluster = LoopbackCluster(address=f"127.0.0.1:{port}", env=env, temp_dir=temp_dir)
    common = ["--block", f"--num-cpus={num_cpus}", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]

    def start(name: str, args: list) -> None:
        log = Path(temp_dir) / f"{name}.out"
        cluster.node_logs.append(log)
        with open(log, "w") as f:
            cluster.procs.append(subprocess.Popen(
                [ray_bin(), "start", *args, *common, f"--dashboard-agent-listen-port={free_port()}"],
                env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))

    try:
        deadline = time.time() + timeout
        head = ["--head", f"--port={port}", f"--temp-dir={temp_dir}", f"--ray-client-server-port={free_port()}"]
        if dashboard:
            dport = free_port()
            cluster.dashboard_url = f"http://127.0.0.1:{dport}"
            head += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dport}"]
        else:
            head += ["--include-dashboard=false"]
        start("head", head)
        # the worker nodes at once: `ray start --address` waits for the head's GCS to come up
        for i in range(workers):
            start(f"worker{i}", [f"--address={cluster.address}"])
        _wait("nodes", lambda: _nodes_alive(cluster, 1 + workers), deadline, cluster)
        yield cluster
    finally:
        _kill_all(cluster.procs)
        shutil.rmtree(temp_dir, ignore_errors=True)
