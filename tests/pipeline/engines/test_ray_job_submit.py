"""A distributed Ray job as cluster users run one: a head with its dashboard (job server) on
loopback plus a worker node, then `ray job submit --working-dir . -- babelmill run CONFIG`."""

from __future__ import annotations

import json
import subprocess
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tests.pipeline.engines.loopback_cluster import loopback_cluster


def _tables(out):
    def read(d):
        return pa.concat_tables([pq.read_table(p) for p in sorted((out / d).glob("*.parquet"))]).sort_by("id")

    return read("output"), read("rejects")


@pytest.mark.slow
@pytest.mark.ray
def test_ray_job_submit_runs_the_pipeline_on_the_cluster(tmp_path, corpus_factory):
    pytest.importorskip("aiohttp", reason="`ray job submit` needs ray[default]")
    from babelmill.pipeline.config import load_config
    from babelmill.pipeline.runner.run import run_pipeline

    corpus = corpus_factory(tmp_path, files=2, docs_per_lang=2)
    out = tmp_path / "job-run"
    # the working dir is uploaded to the cluster and is the job's cwd: only the config goes
    # there, and every path in it is absolute (on storage all nodes see; here: this machine)
    workdir = tmp_path / "jobdir"
    workdir.mkdir()
    cfg = {"name": "jobsubmit", "input": {"paths": [str(corpus)]}, "output": {"dir": str(out)},
           "stages": ["langid", "dedup_exact"], "engine": {"name": "ray", "ray": {"concurrency": 2}}}
    (workdir / "run.yaml").write_text(yaml.safe_dump(cfg))

    with loopback_cluster(workers=1, dashboard=True) as cluster:
        sid = f"bm-{int(time.time())}"
        submit = ["job", "submit", f"--address={cluster.dashboard_url}", "--working-dir", ".",
                  f"--submission-id={sid}", "--", "babelmill", "run", "run.yaml"]
        try:
            job = cluster.ray(*submit, cwd=workdir, timeout=240)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"ray job submit timed out:\n{e.stdout}\n{cluster.logs_tail()}") from e
        logs = cluster.ray("job", "logs", f"--address={cluster.dashboard_url}", sid)
        why = f"{job.stdout[-3000:]}\n{job.stderr[-3000:]}\n{logs.stdout[-3000:]}\n{cluster.logs_tail()}"
        assert job.returncode == 0, why
        assert cluster.job_info(sid)["status"] == "SUCCEEDED", why  # what `ray job status` shows
        # the job's logs name the run and where its manifest is
        assert "jobsubmit: documents per language" in logs.stdout, why
        assert f"manifest: {out / 'manifest.json'}" in logs.stdout, why
        assert "engine ray" in logs.stdout, why

    m = json.loads((out / "manifest.json").read_text())
    assert m["engine"] == "ray" and m["name"] == "jobsubmit"
    c = m["counts"]
    assert c["balanced"] and c["docs_in"] == c["kept"] + c["dropped"]
    assert c["by_stage"]["dedup_exact"]["dropped"] > 0
    workers = {json.loads(p.read_text())["worker"] for p in (out / "units").glob("*.json")}
    assert m["units"]["total"] == 2 and workers

    # the same config in-process gives the same documents, rejects and counts
    local_out = tmp_path / "local-run"
    local = run_pipeline(load_config(workdir / "run.yaml", {"output.dir": str(local_out)}), engine="local", quiet=True)
    assert local["counts"] == c
    job_tables, local_tables = _tables(out), _tables(local_out)
    assert job_tables[0].num_rows > 0
    assert job_tables[0].equals(local_tables[0]) and job_tables[1].equals(local_tables[1])
