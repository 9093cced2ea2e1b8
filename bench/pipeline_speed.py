"""The full curation pipeline (read -> LID -> quality -> exact dedup -> near dedup -> write),
in-process on one core, on the demo corpus and on a larger UDHR-based corpus: documents/s.

    python -m bench.pipeline_speed [--docs N] [--json OUT]     (N = 200,000 x BENCH_SCALE)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from babelmill.paths import config_file
from babelmill.pipeline.config import load_config
from babelmill.pipeline.runner.run import run_pipeline
from bench.corpora import udhr_documents

ROOT = Path(__file__).resolve().parents[1]


def timed_run(cfg_path: Path, overrides: dict) -> tuple[float, dict]:
    cfg = load_config(cfg_path, overrides)
    t = time.perf_counter()
    m = run_pipeline(cfg, engine="local", overwrite=True, quiet=True)
    return time.perf_counter() - t, m


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=int(200_000 * float(os.environ.get("BENCH_SCALE", "1"))))
    ap.add_argument("--json")
    args = ap.parse_args()
    res: dict = {}
    cfg_path = config_file("demo.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        from demo.corpus import build_demo_corpus
        from demo.quality import build_quality_models
        from demo.run import QUALITY_MODELS_DIR

        build_demo_corpus(ROOT / "data" / "demo")
        # the demo config's perplexity and classifier stages read the models the demo trains
        # (reused when `make demo` made them): without them the run stops at its preflight
        build_quality_models(ROOT / QUALITY_MODELS_DIR)
        secs, m = timed_run(cfg_path, {"output.dir": str(tmp / "demo")})
        res["demo"] = {"docs": m["counts"]["docs_in"], "kept": m["counts"]["kept"], "seconds": round(secs, 2),
                       "docs_per_s": round(m["counts"]["docs_in"] / secs, 1)}
        raw = tmp / "big"
        raw.mkdir()
        docs = udhr_documents(args.docs, seed=7)
        per_file = 10_000
        for i in range(0, len(docs), per_file):
            with open(raw / f"part-{i // per_file:04d}.jsonl", "w", encoding="utf-8") as f:
                for j, (text, lang) in enumerate(docs[i : i + per_file]):
                    f.write(json.dumps({"id": f"d{i + j}", "text": text, "lang_true": lang}, ensure_ascii=False) + "\n")
        secs, m = timed_run(cfg_path, {"output.dir": str(tmp / "big-run"), "input.paths": [str(raw)]})
        c = m["counts"]
        res["large"] = {"docs": c["docs_in"], "kept": c["kept"], "seconds": round(secs, 2),
                        "docs_per_s": round(c["docs_in"] / secs, 1),
                        "dropped_by_stage": {k: v["dropped"] for k, v in c["by_stage"].items()}}
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for name in ("demo", "large"):
        r = res[name]
        print(f"{name:6}: {r['docs']:>8} docs in {r['seconds']:>7.1f} s = {r['docs_per_s']:>7.0f} docs/s on one core "
              f"(kept {r['kept']})")
    print("dropped by stage (large):", res["large"]["dropped_by_stage"])
    print(f"peak RSS {res['peak_rss_mb']} MB")
    res["headline"] = f"full pipeline {res['large']['docs_per_s']:.0f} docs/s/core on {res['large']['docs']} UDHR-based docs"
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
