"""Run against a real multi-process Ray cluster on loopback: a head plus a worker node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.pipeline.engines.loopback_cluster import loopback_cluster


@pytest.mark.slow
@pytest.mark.ray
def test_pipeline_on_local_multinode_cluster(tmp_path, corpus_factory):
    corpus = corpus_factory(tmp_path, files=4, docs_per_lang=1)
    # a slow stage, importable by the nodes' workers, so that units spread over both actors
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods" / "napmod.py").write_text(
        "import time\nfrom babelmill.pipeline.core.stage import Stage\n"
        "class Nap(Stage):\n    name = 'nap'\n"
        "    def process(self, batch):\n        time.sleep(1.5)\n        return batch\n"
    )
    pythonpath = os.pathsep.join([str(tmp_path / "mods"), os.environ.get("PYTHONPATH", "")])
    # Ray 2.60 enables token authentication on `ray start`; every process of the test cluster
    # (nodes, `ray status`, the driver) shares one throwaway token (cluster.env).
    with loopback_cluster(workers=1, extra_env={"PYTHONPATH": pythonpath}) as cluster:
        out = tmp_path / "out"
        cfg = tmp_path / "cfg.yaml"
        cfg.write_text(yaml.safe_dump({
            "name": "cluster", "input": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
            "stages": ["napmod:Nap", "langid"], "engine": {"name": "ray", "ray": {"concurrency": 2}},
        }))
        run = subprocess.run([sys.executable, "-m", "babelmill.cli", "run", str(cfg)],
                             env={**cluster.env, "RAY_ADDRESS": cluster.address}, capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-3000:] + "\n" + cluster.logs_tail()
    m = json.loads((out / "manifest.json").read_text())
    assert m["engine"] == "ray" and m["counts"]["balanced"]
    assert m["units"]["total"] == 4
    workers = {json.loads(p.read_text())["worker"] for p in (out / "units").glob("*.json")}
    assert len(workers) == 2, f"expected both nodes' actors to work, got {workers}"
