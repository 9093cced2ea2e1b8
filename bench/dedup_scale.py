"""Dedup at growing scale: seconds per 100k documents and peak RSS of the driver and of each
worker, exact + near dedup on a local Ray with 2 workers (issue 14, part 2).

The corpus is half near duplicates in distinct clusters: every generated document has one
copy with 5% of its units substituted (words; characters for the unspaced scripts), in six
scripts (Zipf-distributed pseudo-words, as bench/dedup_ruler.synthetic_source). Each size
runs in a fresh process, so each driver figure is that run's own peak.

The global phases run as rounds on the workers (pipeline/core/rounds.py), so the driver
holds task lists and per-partition statistics only; goal (issue 14): driver < 1 GB and flat
from 1M to 5M, cost per document growing <= 10%, reduce workers bounded by the stages'
`reduce_memory_mb`.

    make bench-scale                      (sizes 1M and 5M: long)
    python -m bench.dedup_scale --sizes 100000 300000 [--json OUT] [--cluster] [--memory-mb 256]
                                [--corpus-dir DIR: keep and reuse the generated corpora]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.dedup_ruler import SYNTHETIC_ALPHABETS

SCRIPTS = SYNTHETIC_ALPHABETS


@contextlib.contextmanager
def _environ(env: dict):
    old = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(old)


def write_corpus(raw: str, n_unique: int, seed: int = 0, per_file: int = 50_000) -> int:
    """n_unique documents and one 5%-edited copy of each, shuffled into JSONL files."""
    rng = np.random.default_rng(seed)
    langs = list(SCRIPTS)
    vocab = {}
    for lang, (spaced, alphabet) in SCRIPTS.items():
        letters = np.array(list(alphabet))
        if spaced:
            lens = rng.integers(1, 10, 4000)
            units = np.array(["".join(rng.choice(letters, k)) for k in lens])
        else:
            units = letters
        w = 1.0 / (np.arange(len(units)) + 2)
        vocab[lang] = (spaced, units, w / w.sum())
    rows = []
    for i in range(n_unique):
        lang = langs[i % len(langs)]
        spaced, units, p = vocab[lang]
        n = int(rng.integers(80, 160)) * (1 if spaced else 3)
        idx = rng.choice(len(units), n, p=p)
        copy = idx.copy()
        pos = rng.choice(n, max(1, n // 20), replace=False)
        copy[pos] = rng.choice(len(units), len(pos), p=p)
        sep = " " if spaced else ""
        rows.append({"id": f"u{i}", "text": sep.join(units[idx])})
        rows.append({"id": f"u{i}-c", "text": sep.join(units[copy])})
    order = rng.permutation(len(rows))
    for f0 in range(0, len(rows), per_file):
        with open(Path(raw) / f"part-{f0 // per_file:05d}.jsonl", "w", encoding="utf-8") as f:
            for j in order[f0 : f0 + per_file]:
                f.write(json.dumps(rows[j], ensure_ascii=False) + "\n")
    return len(rows)


def run_one(raw: str, out: str, result: str, address: str | None = None, memory_mb: int = 512) -> None:
    """One dedup run in this (fresh) process; writes its figures as JSON."""
    from babelmill.pipeline.config import PipelineConfig
    from babelmill.pipeline.runner.run import run_pipeline

    ray_cfg = {"address": address} if address else {"num_cpus": 2}
    cfg = PipelineConfig.model_validate({
        "input": {"paths": [raw], "split_mb": 32}, "output": {"dir": out},
        "stages": [{"name": st, "params": {"reduce_memory_mb": memory_mb}} for st in ("dedup_exact", "dedup_near")],
        "engine": {"name": "ray", "ray": ray_cfg}})
    t = time.perf_counter()
    m = run_pipeline(cfg, quiet=True)
    secs = time.perf_counter() - t
    Path(result).write_text(json.dumps({
        "docs": m["counts"]["docs_in"], "kept": m["counts"]["kept"], "seconds": round(secs, 1),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_peak_rss_mb": max((v["peak_rss_mb"] for v in m["workers"].values()), default=None),
        # the reduce tasks of the global rounds (verification, components, ...)
        "reduce_peak_rss_mb": max((r["peak_rss_mb"] or 0 for v in m.get("global_phases", {}).values()
                                   for r in v["rounds"]), default=None),
        # the most memory one partition of a round added to its worker (Ray: measured per partition)
        "reduce_task_mb": max((r.get("task_mb") or 0 for v in m.get("global_phases", {}).values()
                               for r in v["rounds"]), default=None),
        "rounds": {k: [(r["round"], r["partitions"], r["rows_in"], r["seconds"], r["peak_rss_mb"], r.get("task_mb"))
                       for r in v["rounds"]] for k, v in m.get("global_phases", {}).items()},
        "dropped": {k: v["dropped"] for k, v in m["counts"]["by_stage"].items()}}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000], help="documents per run")
    ap.add_argument("--json")
    ap.add_argument("--memory-mb", type=int, default=512, help="the dedup stages' reduce_memory_mb")
    ap.add_argument("--corpus-dir", help="keep the generated corpora here (corpus-<size>/) and reuse them")
    ap.add_argument("--cluster", action="store_true",
                    help="run on a 2-node Ray cluster on loopback (head + 1 worker node, 1 CPU each; "
                         "tests/pipeline/engines/loopback_cluster.py) instead of a local Ray with 2 CPUs")
    args = ap.parse_args()
    spawn = multiprocessing.get_context("spawn")
    results = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(args.corpus_dir) / f"corpus-{size}" if args.corpus_dir else Path(tmp) / "raw"
            t = time.perf_counter()
            if not (raw / "_COMPLETE").exists():
                shutil.rmtree(raw, ignore_errors=True)
                raw.mkdir(parents=True)
                p = spawn.Process(target=write_corpus, args=(str(raw), size // 2))
                p.start()
                p.join()
                if p.exitcode != 0:
                    raise RuntimeError("corpus generation failed")
                (raw / "_COMPLETE").write_text("")  # bookkeeping: the readers skip _ files
            gen = time.perf_counter() - t
            res_file = Path(tmp) / "result.json"
            with contextlib.ExitStack() as stack:
                address = None
                if args.cluster:
                    from tests.pipeline.engines.loopback_cluster import loopback_cluster

                    cluster = stack.enter_context(loopback_cluster(workers=1, num_cpus=1))
                    address = cluster.address
                    stack.enter_context(_environ(cluster.env))  # the token, for the driver
                p = spawn.Process(target=run_one, args=(str(raw), str(Path(tmp) / "run"), str(res_file), address,
                                                        args.memory_mb))
                p.start()
                p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"dedup run of {size} documents failed (exit {p.exitcode})")
            r = json.loads(res_file.read_text())
            r["generation_seconds"] = round(gen, 1)
            r["cluster"] = "2-node loopback (1 CPU each)" if args.cluster else "local Ray, 2 CPUs"
            r["reduce_memory_mb"] = args.memory_mb
            r["seconds_per_100k"] = round(r["seconds"] / r["docs"] * 100_000, 2)
            results.append(r)
            print(f"{r['docs']:>10,} docs: {r['seconds']:>7.1f} s ({r['seconds_per_100k']:.2f} s per 100k), driver peak "
                  f"{r['driver_peak_rss_mb']:.0f} MB, worker peak {r['worker_peak_rss_mb']} MB (map/apply), "
                  f"{r['reduce_peak_rss_mb']} MB (reduce workers), one partition at most +{r['reduce_task_mb']} MB "
                  f"(budget {args.memory_mb} MB), kept {r['kept']:,} of {size // 2:,} originals", flush=True)
            for stage, rounds in r["rounds"].items():
                print(f"    {stage}: " + ", ".join(f"{name} {parts}p {rows_in:,} rows {secs}s +{task}MB"
                                                   for name, parts, rows_in, secs, _, task in rounds), flush=True)
    first, last = results[0], results[-1]
    growth = last["seconds_per_100k"] / first["seconds_per_100k"] - 1
    res = {"runs": results, "cost_per_doc_growth": round(growth, 3),
           "headline": (f"{first['docs']:,} -> {last['docs']:,} docs: cost per doc {growth:+.0%} (goal <= +10%), driver "
                        f"{first['driver_peak_rss_mb']:.0f} -> {last['driver_peak_rss_mb']:.0f} MB (goal < 1 GB, flat)")}
    print(res["headline"])
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
