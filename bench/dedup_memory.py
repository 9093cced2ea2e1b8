"""Peak memory of deduplication at scale: exact + near dedup on Ray (local, 2 workers) over a
UDHR-based corpus (1M documents by default: ~0.9 GB of text made of windows over the same
~2,400 paragraphs, so most documents are exact duplicates of one another and the near stage
sees few survivors: this measures the shuffles and the workers at scale, not a corpus with
many distinct near-duplicate clusters).
Prints the peak RSS of every Ray worker (from the run manifest) and of the driver, which holds
the candidate edges and the candidates' signatures.

Not part of `make bench` (it takes several minutes):
    python -m bench.dedup_memory [--docs N] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline
from bench.corpora import udhr_documents


def write_corpus(raw: str, n: int) -> None:
    """Runs in a child process, so the driver's peak RSS reflects deduplication only."""
    docs = udhr_documents(n, seed=3)
    per_file = 50_000
    for i in range(0, len(docs), per_file):
        with open(Path(raw) / f"part-{i // per_file:04d}.jsonl", "w", encoding="utf-8") as f:
            for j, (text, lang) in enumerate(docs[i : i + per_file]):
                f.write(json.dumps({"id": f"d{i + j}", "text": text, "lang": lang}, ensure_ascii=False) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.mkdir()
        t = time.perf_counter()
        proc = multiprocessing.get_context("spawn").Process(target=write_corpus, args=(str(raw), args.docs))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError("corpus generation failed")
        gen = time.perf_counter() - t
        cfg = PipelineConfig.model_validate({
            "input": {"paths": [str(raw)], "extra_fields": ["lang"], "split_mb": 32},
            "output": {"dir": str(Path(tmp) / "run")}, "stages": ["dedup_exact", "dedup_near"],
            "engine": {"name": "ray", "ray": {"num_cpus": 2}}})
        t = time.perf_counter()
        m = run_pipeline(cfg, quiet=True)
        secs = time.perf_counter() - t
    res = {"docs": m["counts"]["docs_in"], "kept": m["counts"]["kept"], "seconds": round(secs, 1),
           "generation_seconds": round(gen, 1), "workers": m["workers"],
           "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "dropped": {k: v["dropped"] for k, v in m["counts"]["by_stage"].items()}}
    print(f"{res['docs']} documents deduplicated in {res['seconds']} s on Ray (2 workers); kept {res['kept']}")
    for w, v in res["workers"].items():
        print(f"  worker {w}: {v['units']} units, peak RSS {v['peak_rss_mb']} MB")
    print(f"  driver (shuffle coordination, verification, components): peak RSS {res['driver_peak_rss_mb']} MB")
    res["headline"] = (f"{res['docs']} docs: worker peak RSS max {max(v['peak_rss_mb'] for v in res['workers'].values())} MB, "
                       f"driver {res['driver_peak_rss_mb']} MB")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
