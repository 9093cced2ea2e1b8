"""Contamination-audit scoring speed: our scorer vs lm-eval (`hf` model, separate venv) on the
same items and model.

    python -m bench.audit_speed [--items 200] [--batch-size 32] [--threads 2] [--model DIR] [--json OUT]

Builds a tiny local GPT-2 (trained for a few steps so scores are not flat) unless --model is given,
takes ARC-Easy test items from shared data when present (else the synthetic benchmark of
testing.contamination_items), scores them with babelmill.contamination.scoring, then runs lm-eval 0.4.13 as a subprocess in
bench/_work/lmeval-venv on a local task with the same prompt ("Question: {q}\\nAnswer:" + " {choice}"),
and prints items/s of both, the ratio, and the largest log-likelihood difference / acc agreement.
Only scoring is timed on both sides (model loading and imports are not), after a warm-up, as the
fastest of --repeat runs (the CPUs are shared, so the fastest run is the least disturbed one).
Set up the lm-eval venv first (torch pinned first):
    python3 -m venv bench/_work/lmeval-venv
    bench/_work/lmeval-venv/bin/pip install torch==2.13.0 && bench/_work/lmeval-venv/bin/pip install lm_eval==0.4.13 transformers==5.18.0 accelerate==1.15.0
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LMEVAL_PY = ROOT / "bench" / "_work" / "lmeval-venv" / "bin" / "python"
SHARED = [Path("/work/shared/data"), ROOT.parent / "shared" / "data"]

_TASK = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{gold}}}}"
doc_to_choice: "{{{{choices}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
  - metric: acc_norm
"""

_RUNNER = r"""
import json, sys, time
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
model_dir, task_dir, task, bs, threads, repeat, out = sys.argv[1:8]
torch.set_num_threads(int(threads))
lm = HFLM(pretrained=model_dir, batch_size=int(bs), device="cpu", dtype="float32")
tm = TaskManager(include_path=task_dir)
simple_evaluate(model=lm, tasks=[task], task_manager=tm, limit=8, num_fewshot=0)  # warm-up, like ours
times = []
for _ in range(int(repeat)):
    t = time.perf_counter()
    res = simple_evaluate(model=lm, tasks=[task], task_manager=tm, log_samples=True, num_fewshot=0)
    times.append(time.perf_counter() - t)
dt = min(times)
samples = sorted(res["samples"][task], key=lambda s: s["doc_id"])
json.dump({"seconds": dt, "results": res["results"][task],
           "loglik": [[float(r[0]) for r in s["filtered_resps"]] for s in samples]}, open(out, "w"))
"""


def _items(n: int):
    from babelmill.contamination.benchmarks.loaders import load_benchmark

    for root in SHARED:
        p = root / "arc" / "ARC-Easy-Test.flat.jsonl"
        if p.is_file():
            return "ARC-Easy-Test", load_benchmark(p, lang="en").items[:n]
    from testing.contamination_items import benchmark_items, make_world

    return "synthetic", [it for it in benchmark_items(make_world(60), 60) if it.lang == "en"][:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per side; the fastest counts (shared CPUs)")
    ap.add_argument("--model", help="local HF model dir (default: build a tiny GPT-2)")
    ap.add_argument("--work", default=str(ROOT / "bench" / "_work" / "contamination"))
    ap.add_argument("--json", help="also write the figures here (bench/run_all.py convention, with a `headline`)")
    a = ap.parse_args(argv)
    import numpy as np
    import torch

    from babelmill.contamination.backends import HFBackend
    from babelmill.contamination.benchmarks.loaders import save_jsonl
    from babelmill.contamination.scoring import score_items, summarize
    from testing.tinylm import make_tiny_lm

    torch.set_num_threads(a.threads)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    source, items = _items(a.items)
    model_dir = Path(a.model) if a.model else work / "tiny-gpt2-256x4"
    if not a.model and not (model_dir / "config.json").is_file():
        docs = [f"Question: {it.question}\nAnswer: {c}" for it in items for c in it.choices]
        make_tiny_lm(model_dir, docs, steps=60, n_embd=256, n_head=4, n_layer=4, n_positions=512)
    be = HFBackend(model_dir)
    score_items(be, items[:8], batch_size=a.batch_size)  # warm-up
    times = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        ours = score_items(be, items, batch_size=a.batch_size)
        times.append(time.perf_counter() - t)
    dt_ours = min(times)
    ours_s = summarize(ours)
    print(f"items: {len(items)} ({source}), model: {model_dir}, batch {a.batch_size}, threads {a.threads}")
    print(f"babelmill scorer: {len(items) / dt_ours:.1f} items/s ({dt_ours:.2f} s)  acc {ours_s['acc']:.4f} "
          f"acc_norm {ours_s['acc_norm']:.4f}")
    result = {"items": len(items), "source": source, "batch_size": a.batch_size, "threads": a.threads,
              "ours_items_per_s": round(len(items) / dt_ours, 2), "ours_acc": ours_s["acc"], "ours_acc_norm": ours_s["acc_norm"]}
    if not LMEVAL_PY.is_file():
        print(f"lm-eval: not run ({LMEVAL_PY} missing; see the docstring to set it up)")
        result["headline"] = f"{result['ours_items_per_s']} items/s (lm-eval not installed)"
        _write(a.json, result)
        return 0
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tmp = Path(tmp)
        data = save_jsonl(items, tmp / "items.jsonl")
        (tmp / "tasks").mkdir()
        (tmp / "tasks" / "bm_bench_mc.yaml").write_text(_TASK.format(name="bm_bench_mc", data=data), encoding="utf-8")
        (tmp / "runner.py").write_text(_RUNNER, encoding="utf-8")
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                   HF_DATASETS_CACHE=str(tmp / "hf-datasets"), TOKENIZERS_PARALLELISM="false")
        out = tmp / "lmeval.json"
        proc = subprocess.run([str(LMEVAL_PY), str(tmp / "runner.py"), str(model_dir), str(tmp / "tasks"), "bm_bench_mc",
                               str(a.batch_size), str(a.threads), str(a.repeat), str(out)], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print("lm-eval failed:\n" + proc.stderr[-3000:])
            result["headline"] = f"{result['ours_items_per_s']} items/s (lm-eval failed)"
            _write(a.json, result)
            return 1
        res = json.loads(out.read_text())
    dt_le = res["seconds"]
    r = res["results"]
    print(f"lm-eval 0.4.13 hf: {len(items) / dt_le:.1f} items/s ({dt_le:.2f} s)  acc {r['acc,none']:.4f} "
          f"acc_norm {r['acc_norm,none']:.4f}")
    diffs = [abs(x - y) for o, le in zip(ours, res["loglik"], strict=True) for x, y in zip(o.loglik, le, strict=True)]
    worst = max(range(len(items)), key=lambda i: max(abs(x - y) for x, y in zip(ours[i].loglik, res["loglik"][i], strict=True)))
    if os.environ.get("BENCH_DEBUG"):
        print("worst item", items[worst], ours[worst].loglik, res["loglik"][worst])
    preds = sum(o.pred == int(np.argmax(le)) for o, le in zip(ours, res["loglik"], strict=True))
    agree = abs(ours_s["acc"] - r["acc,none"]) < 5e-4 and abs(ours_s["acc_norm"] - r["acc_norm,none"]) < 5e-4
    print(f"speed ratio (ours / lm-eval): {dt_le / dt_ours:.2f}x")
    print(f"max |loglik diff| {max(diffs):.2e}; same argmax on {preds}/{len(items)} items; "
          f"acc/acc_norm agree within rounding: {agree}")
    result.update({"lmeval_items_per_s": round(len(items) / dt_le, 2), "lmeval_acc": r["acc,none"],
                   "lmeval_acc_norm": r["acc_norm,none"], "speed_ratio": round(dt_le / dt_ours, 2),
                   "max_loglik_diff": max(diffs), "scores_agree": agree,
                   "headline": f"{len(items) / dt_ours:.1f} items/s, {dt_le / dt_ours:.2f}x lm-eval, scores agree: {agree}"})
    _write(a.json, result)
    return 0 if agree else 1


def _write(path: str | None, result: dict) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
