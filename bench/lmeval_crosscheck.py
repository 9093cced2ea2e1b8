"""A real client of `babelmill pretrain export`: lm-evaluation-harness scores the exported model.

    python -m bench.lmeval_crosscheck [--json OUT] [--items 48] [--train-iters 60]

Trains the tiny preset a few dozen steps on the synthetic corpus of testing.pretrain_corpus
(once, kept under --work), exports it with `babelmill pretrain export` to a Hugging Face dir,
then scores one small multiple-choice JSONL twice:

- lm-eval 0.4.13 (`hf` model = AutoModelForCausalLM on the exported dir, no trust_remote_code),
  in its own venv bench/_work/lmeval-venv (`make bench/_work/lmeval-venv/.done`), as a
  subprocess, on a local task with the audit's prompt ("Question: {q}\\nAnswer:" + " {choice}");
- `babelmill audit` on the megatron checkpoint itself (the audit CLI for the summary accuracy,
  and its scorer for the per-item results),

and compares them item by item: correct / not correct under `acc` and `acc_norm`, and the
option log-likelihoods. Exit 0 when every item agrees.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LMEVAL_PY = ROOT / "bench" / "_work" / "lmeval-venv" / "bin" / "python"

# the lm-eval task template of the audit speed benchmark: both score items the same way
from bench.audit_speed import _TASK  # noqa: E402

_RUNNER = r"""
import json, sys
import torch
from lm_eval import simple_evaluate
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
model_dir, task_dir, task, out = sys.argv[1:5]
torch.set_num_threads(2)
lm = HFLM(pretrained=model_dir, batch_size=8, device="cpu", dtype="float32", trust_remote_code=False)
res = simple_evaluate(model=lm, tasks=[task], task_manager=TaskManager(include_path=task_dir),
                      log_samples=True, num_fewshot=0)
samples = sorted(res["samples"][task], key=lambda s: s["doc_id"])
json.dump({"results": res["results"][task],
           "acc": [float(s["acc"]) for s in samples], "acc_norm": [float(s["acc_norm"]) for s in samples],
           "loglik": [[float(r[0]) for r in s["filtered_resps"]] for s in samples]}, open(out, "w"))
"""


def _cli(args: list[str], timeout: int = 900) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"python -m {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def trained_checkpoint(work: Path, train_iters: int) -> Path:
    """The tiny preset trained `train_iters` steps (reused when already there)."""
    from babelmill.paths import config_file
    from babelmill.pretrain.checkpoint import read_latest
    from testing import pretrain_corpus

    run = work / "run"
    if read_latest(run) == f"iter_{train_iters:07d}":
        return run
    tok = pretrain_corpus.train_tokenizer(work / "tokenizer.json", vocab_size=400)
    corpus = pretrain_corpus.write_corpus(work / "corpus", docs_per_lang=100, layout="jsonl")
    if not (work / "data" / "preprocess.json").is_file():
        _cli(["babelmill.pretrain.cli", "preprocess", "--input", str(corpus), "--tokenizer", str(tok),
              "--output", str(work / "data"), "--workers", "1"])
    _cli(["babelmill.pretrain.cli", "train", "--config", str(config_file("pretrain", "tiny.yaml")),
          "--data", str(work / "data"), "--save", str(run), "--train-iters", str(train_iters)])
    return run


def benchmark_file(work: Path, tokenizer, n: int, max_tokens: int) -> tuple[Path, int]:
    """English synthetic MC items whose prompt + longest option fit the tiny model's window
    (so neither side truncates); the file (babelmill/lm-eval JSONL) and how many were left out."""
    from babelmill.contamination.benchmarks.loaders import save_jsonl
    from babelmill.contamination.scoring import context_of
    from testing.contamination_items import benchmark_items, make_world

    items, dropped = [], 0
    for it in benchmark_items(make_world(60), 60):
        if it.lang != "en":
            continue
        longest = max(len(tokenizer.encode(context_of(it) + " " + c).ids) for c in it.choices)
        if longest > max_tokens:
            dropped += 1
            continue
        items.append(it)
        if len(items) == n:
            break
    path = save_jsonl(items, work / "mc_en.jsonl")
    # the language is left to the audit to identify (the field is "und" in the file)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps({**r, "lang": "und"}, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path, dropped


def run_lmeval(hf_dir: Path, data: Path, work: Path) -> dict:
    tasks = work / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "bm_export_mc.yaml").write_text(_TASK.format(name="bm_export_mc", data=data), encoding="utf-8")
    (work / "runner.py").write_text(_RUNNER, encoding="utf-8")
    out = work / "lmeval.json"
    # not the torch.distributed settings this process made for megatron (lm-eval would join them)
    dist_vars = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "GLOO_SOCKET_IFNAME")
    env = {k: v for k, v in os.environ.items() if k not in dist_vars}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_CACHE=str(work / "hf-datasets"), TOKENIZERS_PARALLELISM="false")
    cmd = [str(LMEVAL_PY), str(work / "runner.py"), str(hf_dir), str(tasks), "bm_export_mc", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError("lm-eval failed:\n" + proc.stderr[-3000:])
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=48)
    ap.add_argument("--train-iters", type=int, default=60)
    ap.add_argument("--work", default=str(ROOT / "bench" / "_work" / "lmeval_crosscheck"))
    ap.add_argument("--json", help="also write the figures here (bench/run_all.py convention)")
    a = ap.parse_args(argv)
    if not LMEVAL_PY.is_file():
        print(f"lm-eval venv missing ({LMEVAL_PY}); build it with `make bench/_work/lmeval-venv/.done`")
        return 1
    import numpy as np

    from babelmill.contamination.backends import MegatronBackend
    from babelmill.contamination.benchmarks.loaders import load_benchmark
    from babelmill.contamination.scoring import score_items
    from babelmill.pretrain.data.tokenizer import load_tokenizer

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    run = trained_checkpoint(work, a.train_iters)
    hf_dir = work / "hf"
    export_cmd = ["babelmill.pretrain.cli", "export", "--checkpoint", str(run), "--output", str(hf_dir)]
    _cli(export_cmd)
    data, dropped = benchmark_file(work, load_tokenizer(run / "tokenizer.json"), a.items, max_tokens=60)

    # babelmill audit (the CLI a user runs) on the megatron checkpoint ...
    audit_json = work / "audit.json"
    audit_out = _cli(["babelmill.contamination.cli", "--model", str(run), "--benchmark", str(data),
                      "--json", str(audit_json)])
    audit = json.loads(audit_json.read_text())
    (bench_name, b), = audit["benchmarks"].items()
    (lang, row), = b["languages"].items()
    # ... and its scorer, for the per-item results (the audit JSON holds the per-language summary)
    bench = load_benchmark(data, lang=lang)
    ours = score_items(MegatronBackend(run), bench.items)
    le = run_lmeval(hf_dir, data, work)

    n = len(ours)
    same_acc = sum(int(o.correct) == int(x) for o, x in zip(ours, le["acc"], strict=True))
    same_norm = sum(int(o.correct_norm) == int(x) for o, x in zip(ours, le["acc_norm"], strict=True))
    diffs = [abs(x - y) for o, ll in zip(ours, le["loglik"], strict=True) for x, y in zip(o.loglik, ll, strict=True)]
    acc_ours = float(np.mean([o.correct for o in ours]))
    acc_norm_ours = float(np.mean([o.correct_norm for o in ours]))
    ok = same_acc == n and same_norm == n and abs(row["raw_acc_original"] - acc_ours) < 1e-12
    print(audit_out.strip().splitlines()[0])
    print(f"model: {run} (tiny preset, {a.train_iters} steps) exported to {hf_dir}")
    print(f"items: {n} ({data}; {dropped} longer than the 64-token window left out); "
          f"audit identified the language: {lang}")
    print(f"babelmill audit (megatron): acc {acc_ours:.4f}  acc_norm {acc_norm_ours:.4f}")
    print(f"lm-eval 0.4.13 (HF export): acc {le['results']['acc,none']:.4f}  "
          f"acc_norm {le['results']['acc_norm,none']:.4f}")
    print(f"per-item agreement: acc {same_acc}/{n}, acc_norm {same_norm}/{n}; "
          f"max |loglik diff| {max(diffs):.2e}")
    result = {"items": n, "dropped_too_long": dropped, "language": lang, "train_iters": a.train_iters,
              "audit_acc": acc_ours, "audit_acc_norm": acc_norm_ours, "audit_cli_raw_acc": row["raw_acc_original"],
              "lmeval_acc": le["results"]["acc,none"], "lmeval_acc_norm": le["results"]["acc_norm,none"],
              "items_agree_acc": same_acc, "items_agree_acc_norm": same_norm, "max_loglik_diff": max(diffs),
              "export_command": "python -m " + " ".join(export_cmd).replace(str(ROOT) + "/", ""),
              "ok": ok,
              "headline": f"lm-eval on the HF export vs babelmill audit: {same_acc}/{n} items agree (acc), "
                          f"{same_norm}/{n} (acc_norm), max |dloglik| {max(diffs):.1e}"}
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
