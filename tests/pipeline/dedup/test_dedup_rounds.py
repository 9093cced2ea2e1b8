"""Near dedup's global phase as rounds on the engine: the drops equal a single-process
computation over the same verified edges (components, kept ids, reject details, cluster
sizes), for any partition count and on every engine; a run killed in any round resumes from
the last finished one with identical output."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.core.global_stage import cluster_sizes
from babelmill.pipeline.dedup import near
from babelmill.pipeline.runner.run import run_pipeline


def _chains_corpus(raw, n_chains=12, length=8, n_unique=60, seed=11):
    """Chains of copies, each copy 6% of the previous one's words substituted: neighbours
    align (>= 0.87), the ends of a chain do not, so only the components join a chain into one
    cluster. Chain members are scattered over the files in random order."""
    rng = np.random.default_rng(seed)
    vocab = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(k))) for k in rng.integers(2, 9, 3000)])
    p = 1.0 / (np.arange(len(vocab)) + 2)
    p /= p.sum()
    docs = []
    for c in range(n_chains):
        words = rng.choice(len(vocab), 150, p=p)
        for k in range(length):
            docs.append({"id": f"c{c}-{k}", "text": " ".join(vocab[words])})
            words = words.copy()
            pos = rng.choice(len(words), 9, replace=False)
            words[pos] = rng.choice(len(vocab), 9, p=p)
    docs += [{"id": f"u{i}", "text": " ".join(vocab[rng.choice(len(vocab), 150, p=p)])} for i in range(n_unique)]
    order = rng.permutation(len(docs))
    raw.mkdir(parents=True, exist_ok=True)
    for f, idx in enumerate(np.array_split(order, 5)):
        (raw / f"part-{f}.jsonl").write_text("".join(json.dumps(docs[i]) + "\n" for i in idx), encoding="utf-8")
    return docs


def _cfg(raw, out, engine="local", num_parts=1, memory_mb=512):
    params = {"num_parts": num_parts, "reduce_memory_mb": memory_mb}
    return {"input": {"paths": [str(raw)]}, "output": {"dir": str(out)},
            "stages": [{"name": "dedup_exact", "params": params}, {"name": "dedup_near", "params": params}],
            "engine": {"name": engine}}


def _run(raw, out, **kw):
    return run_pipeline(PipelineConfig.model_validate(_cfg(raw, out, **kw)), quiet=True)


def _tables(out):
    data = pa.concat_tables([pq.read_table(p) for p in sorted((out / "output").glob("*.parquet"))]).sort_by("id")
    rej = pa.concat_tables([pq.read_table(p) for p in sorted((out / "rejects").glob("*.parquet"))]).sort_by("id")
    return data, rej


def _oracle(out):
    """Single process, from the verified edges the run computed: components by the in-memory
    min-label propagation, kept = smallest ref, best match = highest similarity (ties: the
    smaller ref), and cluster sizes through the exact drops."""
    verified = pa.concat_tables([pq.read_table(f) for f in sorted((out / "dedup" / "dedup_near" / "rounds").glob(
        "*-verify/part-*.parquet"))])
    lo, hi = verified.column("lo").to_numpy(), verified.column("hi").to_numpy()
    sim = verified.column("sim").to_pylist()
    ids = dict(zip(lo.tolist(), verified.column("lo_id").to_pylist(), strict=True))
    ids.update(zip(hi.tolist(), verified.column("hi_id").to_pylist(), strict=True))
    best: dict[int, tuple[float, int]] = {}
    for x, y, s in [*zip(lo.tolist(), hi.tolist(), sim, strict=True), *zip(hi.tolist(), lo.tolist(), sim, strict=True)]:
        if x not in best or (s, -y) > (best[x][0], -best[x][1]):
            best[x] = (s, y)
    nodes, label = near.connected_components(lo, hi)
    drops = {}
    for n, m in zip(nodes.tolist(), label.tolist(), strict=True):
        if n != m:
            s, y = best[n]
            drops[ids[n]] = (ids[m], f"near duplicate of {ids[m]} (aligned similarity {s:.2f} with {ids[y]})", n, m)
    return drops


def test_near_drops_equal_the_single_process_oracle(tmp_path):
    docs = _chains_corpus(tmp_path / "raw")
    m = _run(tmp_path / "raw", tmp_path / "run", num_parts=3)
    want = _oracle(tmp_path / "run")
    data, rej = _tables(tmp_path / "run")
    near_rej = rej.filter(pa.compute.equal(rej.column("stage"), "dedup_near"))
    got = {r["id"]: (r["kept_id"], r["detail"]) for r in near_rej.to_pylist()}
    assert got == {k: v[:2] for k, v in want.items()}
    # the planted chains are what was found: one kept document per chain (its earliest)
    chains = {d["id"].split("-")[0] for d in docs if d["id"].startswith("c")}
    kept = set(data.column("id").to_pylist())
    assert len(kept) == len(docs) - len(got) - m["counts"]["by_stage"]["dedup_exact"]["dropped"]
    assert {k.split("-")[0] for k in kept if k.startswith("c")} == chains
    assert sum(k.startswith("c") for k in kept) == len(chains)
    # cluster sizes: the resolver's, against the single-process fold over both stages' drops
    exact = pq.read_table(tmp_path / "run" / "dedup" / "dedup_exact" / "drops") if m["counts"]["by_stage"][
        "dedup_exact"]["dropped"] else None
    near_drops = pa.table({"ref": [v[2] for v in want.values()], "kept_ref": [v[3] for v in want.values()]})
    sizes = cluster_sizes([t for t in (exact, near_drops) if t is not None])
    assert sorted(x for x in data.column("cluster_size").to_pylist() if x > 1) == sorted(sizes.values())
    rounds = [r["round"] for r in m["global_phases"]["dedup_near"]["rounds"]]
    assert sum(r.endswith("large-star") for r in rounds) > 1, rounds  # the chains needed iterations


@pytest.mark.ray
@pytest.mark.beam
def test_rounds_identical_for_any_partition_count_and_engine(tmp_path, ray_session):
    _chains_corpus(tmp_path / "raw", n_chains=6, n_unique=450)
    ref = None
    for name, kw in [("p1", {}), ("p7", {"num_parts": 7}), ("tiny-memory", {"memory_mb": 1}),
                     ("ray", {"engine": "ray", "num_parts": 3}), ("beam", {"engine": "beam", "num_parts": 5})]:
        m = _run(tmp_path / "raw", tmp_path / name, **kw)
        got = (*_tables(tmp_path / name), m["counts"])
        if ref is None:
            ref = got
            continue
        assert got[0].equals(ref[0]) and got[1].equals(ref[1]) and got[2] == ref[2], name
    parts = {r["partitions"] for r in m["global_phases"]["dedup_near"]["rounds"]}
    assert parts == {5}
    # a 1 MB budget spreads the bands round over more partitions than the minimum
    tiny = json.loads((tmp_path / "tiny-memory" / "manifest.json").read_text())
    assert tiny["global_phases"]["dedup_near"]["rounds"][0]["partitions"] > 1


def _round_dirs(run):
    """Every round of the run in the order it ran (stages, their drops, the resolution)."""
    out = []
    for st in ("dedup_exact", "dedup_near"):
        d = run / "dedup" / st
        out += sorted((d / "rounds").iterdir()) + [d / "drops"]
    return out + sorted((run / "dedup" / "_resolve" / "rounds").iterdir()) + [run / "dedup" / "resolved"]


def _rewind(run, k):
    """The run directory as a kill during round k leaves it: rounds before k finished, round k
    with part of its files written and no _SUCCESS, nothing after it, no apply phase."""
    dirs = _round_dirs(run)
    for d in dirs[k + 1 :]:
        shutil.rmtree(d)
    parts = sorted(dirs[k].glob("part-*.parquet"))
    for f in parts[len(parts) // 2 :]:
        f.unlink()
    (dirs[k] / "_SUCCESS").unlink()
    stage_of = {st: run / "dedup" / st for st in ("dedup_exact", "dedup_near")}
    for d in stage_of.values():
        if not (d / "drops" / "_SUCCESS").exists():
            (d / "_SUCCESS").unlink(missing_ok=True)
    (run / "dedup" / "_resolve.json").unlink(missing_ok=True)
    for sub in ("output", "units"):
        shutil.rmtree(run / sub)
    for f in (run / "rejects").glob("*-dedup.parquet"):
        f.unlink()
    (run / "manifest.json").unlink()


def test_killed_in_any_round_resumes_to_identical_output(tmp_path):
    _chains_corpus(tmp_path / "raw", n_chains=5, n_unique=20)
    # exact copies too, so that the exact stage and the resolution have work
    extra = [json.loads(line) for line in (tmp_path / "raw" / "part-0.jsonl").read_text().splitlines()[:4]]
    (tmp_path / "raw" / "part-9.jsonl").write_text("".join(json.dumps({**d, "id": "x" + d["id"]}) + "\n" for d in extra))
    _run(tmp_path / "raw", tmp_path / "ref", num_parts=3)
    ref = _tables(tmp_path / "ref")
    n = len(_round_dirs(tmp_path / "ref"))
    assert n >= 12
    for k in range(n):
        run = tmp_path / f"killed-{k}"
        _run(tmp_path / "raw", run, num_parts=3)
        _rewind(run, k)
        before = {p.name: (p / "_SUCCESS").stat().st_mtime_ns for p in _round_dirs(run)[:k]}
        _run(tmp_path / "raw", run, num_parts=3)
        got = _tables(run)
        assert got[0].equals(ref[0]) and got[1].equals(ref[1]), _round_dirs(tmp_path / "ref")[k]
        # the rounds that had finished were not redone
        assert before == {p.name: (p / "_SUCCESS").stat().st_mtime_ns for p in _round_dirs(run)[:k]}


@pytest.mark.slow
def test_sigkill_during_the_global_phase_resumes_to_identical_output(tmp_path):
    """A real kill: the dedup run is SIGKILLed once its near-dedup rounds have started (some
    finished, the stage not), then rerun from the CLI."""
    _chains_corpus(tmp_path / "raw", n_chains=150, length=8, n_unique=1500)
    _run(tmp_path / "raw", tmp_path / "ref", num_parts=16)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_cfg(tmp_path / "raw", tmp_path / "killed", num_parts=16)))
    rounds = tmp_path / "killed" / "dedup" / "dedup_near" / "rounds"
    p = subprocess.Popen([sys.executable, "-m", "babelmill.cli", "run", str(cfg)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    deadline = time.time() + 300
    while time.time() < deadline and not (rounds / "02-attach" / "_SUCCESS").exists():
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (rounds / "02-attach" / "_SUCCESS").exists(), "the kill should land in the near-dedup rounds"
    assert not (tmp_path / "killed" / "dedup" / "dedup_near" / "_SUCCESS").exists()
    finished = {d.name for d in rounds.iterdir() if (d / "_SUCCESS").exists()}
    p = subprocess.run([sys.executable, "-m", "babelmill.cli", "run", str(cfg)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    got, ref = _tables(tmp_path / "killed"), _tables(tmp_path / "ref")
    assert got[0].equals(ref[0]) and got[1].equals(ref[1])
    m = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert finished <= {r["round"] for r in m["global_phases"]["dedup_near"]["rounds"]}
