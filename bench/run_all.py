"""`make bench`: run every benchmark, collect their JSON into bench/results.json, print a
Markdown table. Each benchmark also runs alone: `python -m bench.<name> --help`.

Corpus sizes scale with the environment variable BENCH_SCALE (default 1).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("langid_accuracy", []),
    ("langid_speed", []),
    ("quality_speed", []),
    ("quality_model_speed", []),
    ("dedup_speed", []),
    ("dedup_recall", []),
    ("pipeline_speed", []),
    ("tokenizer_speed", []),
    ("tokenizer_parity", []),
    ("train_overhead", []),
    ("audit_speed", []),
    ("lmeval_crosscheck", []),
]


def main() -> int:
    work = HERE / "_work"
    work.mkdir(exist_ok=True)
    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "scale": float(os.environ.get("BENCH_SCALE", "1")),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "benchmarks": {},
    }
    failed = []
    for name, extra in BENCHMARKS:
        out = work / f"{name}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", f"bench.{name}", "--json", str(out), *extra]
        print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.time()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        entry = {"command": " ".join(["python", *cmd[1:]]).replace(str(HERE.parent) + "/", ""), "seconds": round(time.time() - t0, 1)}
        if rc == 0 and out.exists():
            entry["result"] = json.loads(out.read_text())
        else:
            entry["error"] = f"exit code {rc}"
            failed.append(name)
        results["benchmarks"][name] = entry
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n| benchmark | headline | seconds | command |\n|---|---|---|---|")
    for name, e in results["benchmarks"].items():
        head = e.get("result", {}).get("headline", e.get("error", ""))
        print(f"| {name} | {head} | {e['seconds']} | `{e['command']}` |")
    print(f"\nwrote {HERE / 'results.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
