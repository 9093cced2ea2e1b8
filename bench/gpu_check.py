"""`make gpu-check`: the pretraining GPU paths, measured, on the GPUs this machine has.

    python -m bench.gpu_check [--json OUT] [--dry] [--presets 125m,1.3b] [--require-mfu 0.40]

With GPUs (torch.cuda), for each of the 125m and 1.3b presets (its YAML, on one GPU per
data-parallel rank: tensor = pipeline = 1, data parallel over every GPU found):

- bf16, the distributed optimizer, async checkpoint saving, and the layer spec `pretrain.model`
  picks (Transformer Engine when it imports, megatron's local spec otherwise);
- run A trains `--steps` steps and saves (async, while training goes on) at `--save-at`;
- run B, a new process, resumes from that checkpoint and trains the remaining steps;
- it reports tokens/s per GPU and MFU (median of the logged windows after the first, with the
  peak-FLOPs table and FLOP count of `pretrain.loop`), peak GPU memory, and whether run B's
  losses equal run A's for the same steps (exactly, and within --loss-rtol).

Without a GPU (or with --dry) it runs the dry mode, which is part of `make test`: every preset
is built on the meta device (parameter count cross-checked against `pretrain.sizing`), and the
tiny preset goes through the same run A / stop / run B code on CPU (fp32, synchronous save;
megatron's distributed optimizer and async save are CUDA-only), whose losses must match exactly.

Both modes print one table and write a JSON of the figures (default bench/_work/gpu_check.json,
with a `headline` for bench/run_all.py). Exit 0 when every check passed (and, with
--require-mfu, the 1.3b MFU reached it), else 1. Sized to finish in well under 8 minutes on one
H100/H200: the legs are short, the corpus is synthetic, each checkpoint is deleted after use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from babelmill.paths import config_file

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = config_file("pretrain")

# per preset on GPU: micro-batch per GPU, steps of run A, checkpoint iteration (the one
# checkpoint of run A: save_at < steps < 2 * save_at)
# and gradient-accumulation micro-batches per step
GPU_PLAN = {"125m": {"micro": 8, "accum": 4, "steps": 22, "save_at": 12},
            "1.3b": {"micro": 4, "accum": 4, "steps": 18, "save_at": 10}}
DRY_PLAN = {"tiny": {"micro": 8, "accum": 1, "steps": 5, "save_at": 3}}


# ---------------------------------------------------------------- one training leg (own process)

def _spec_name(trainer) -> str:
    from babelmill.pretrain.model import unwrap

    layer = unwrap(trainer.unwrapped[0]).decoder.layers[0]
    mod = type(layer.self_attention.linear_qkv).__module__
    return "transformer_engine" if "transformer_engine" in mod or ".te_" in mod or "extensions" in mod \
        else "local"


def leg(config: str, data: str, save: str, out: str) -> None:
    """Train (or resume) `save` to the config's train_iters without a checkpoint at exit;
    write losses and speed/memory figures (rank 0) to `out`."""
    import torch

    from babelmill.pretrain import cpu_compat
    from babelmill.pretrain.config import load_config
    from babelmill.pretrain.loop import Trainer
    from babelmill.pretrain.metrics import read_metrics

    cpu_compat.quiet_megatron_warnings()
    cfg = load_config(config)
    trainer = Trainer(cfg, data, save, progress=False, report=lambda m: print(m, flush=True))
    t0 = time.perf_counter()
    try:
        trainer.setup()
        start = trainer.iteration
        setup_s = time.perf_counter() - t0
        res = trainer.run(save_at_exit=False)
        run_s = time.perf_counter() - t0 - setup_s
        if trainer.rank != 0:
            return
        recs = [r for r in read_metrics(save) if "tokens_per_second" in r and r["iteration"] > start]
        steady = recs[1:] or recs  # the first window holds warm-up (allocator, kernels, compile)
        world = trainer.dist.world_size
        cuda = torch.cuda.is_available()
        if cuda:
            peak = torch.cuda.max_memory_allocated() / 2**30
        else:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
        figures = {
            "losses": {str(k): v for k, v in res.losses.items()}, "start_iteration": start,
            "resumed_from": res.resumed_from, "iteration": res.iteration,
            "tokens_per_second_per_gpu": statistics.median(r["tokens_per_second"] for r in steady) / world
            if steady else None,
            "mfu": statistics.median(r["mfu"] for r in steady) if steady and "mfu" in steady[0] else None,
            "peak_memory_gib": round(peak, 2), "peak_memory_kind": "cuda allocated" if cuda else "process RSS",
            "world_size": world, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "precision": trainer.precision, "distributed_optimizer": trainer.distributed_optimizer,
            "async_save": trainer.ckpt.async_save, "layer_spec": _spec_name(trainer),
            "parameters": trainer.n_params, "setup_seconds": round(setup_s, 1), "run_seconds": round(run_s, 1),
        }
        Path(out).write_text(json.dumps(figures, indent=1))
    finally:
        trainer.close()


# ---------------------------------------------------------------- orchestration

def _launch(nproc: int, args: list[str], log: Path, timeout: int) -> None:
    if nproc > 1:
        from babelmill.pretrain.distributed import free_port

        cmd = [sys.executable, "-m", "babelmill.pretrain.torchrun_local", "--nnodes", "1",
               "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
               "-m", "bench.gpu_check", *args]
    else:
        cmd = [sys.executable, "-m", "bench.gpu_check", *args]
    env = dict(os.environ, PYTHONWARNINGS="ignore", CUDA_DEVICE_MAX_CONNECTIONS="1")
    env.setdefault("OMP_NUM_THREADS", "1" if nproc == 1 else "4")
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=timeout)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}); log {log}:\n{tail}")


def write_config(preset: str, path: Path, plan: dict, nproc: int, gpu: bool) -> Path:
    import yaml

    data = yaml.safe_load((CONFIGS / f"{preset}.yaml").read_text())
    data["parallel"] = {"tensor": 1, "pipeline": 1, "distributed_optimizer": gpu}
    t = data["train"]
    t.update(micro_batch_size=plan["micro"], global_batch_size=plan["micro"] * plan["accum"] * nproc,
             train_iters=plan["steps"], precision="bf16" if gpu else "fp32", eval_interval=10**6,
             eval_iters=1, log_interval=2, prefetch="auto")
    data["optimizer"]["warmup_iters"] = 2
    data["optimizer"].pop("decay_iters", None)
    data["data"] = {"split": "90,5,5"}
    data["checkpoint"] = {"save_interval": plan["save_at"], "keep_last": 1, "async_save": gpu,
                          "checksum": "size"}
    path.write_text(yaml.safe_dump(data))
    return path


def run_preset(preset: str, plan: dict, work: Path, data: Path, nproc: int, gpu: bool,
               loss_rtol: float, timeout: int = 900) -> dict:
    """Run A (uninterrupted, checkpoint at save_at) and run B (resumed from it); the figures."""
    assert plan["save_at"] < plan["steps"] < 2 * plan["save_at"], plan
    d = work / preset
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    cfg = write_config(preset, d / "config.yaml", plan, nproc, gpu)
    save = d / "save"
    t0 = time.perf_counter()
    _launch(nproc, ["--leg", str(cfg), str(data), str(save), str(d / "a.json")], d / "a.log", timeout)
    a = json.loads((d / "a.json").read_text())
    _launch(nproc, ["--leg", str(cfg), str(data), str(save), str(d / "b.json")], d / "b.log", timeout)
    b = json.loads((d / "b.json").read_text())
    steps = [str(i) for i in range(plan["save_at"] + 1, plan["steps"] + 1)]
    diffs = [abs(a["losses"][s] - b["losses"][s]) / max(abs(a["losses"][s]), 1e-12) for s in steps
             if s in a["losses"] and s in b["losses"]]
    resumed_ok = b["start_iteration"] == plan["save_at"] and len(diffs) == len(steps)
    out = {k: a[k] for k in ("tokens_per_second_per_gpu", "mfu", "peak_memory_gib", "peak_memory_kind",
                             "world_size", "device", "precision", "distributed_optimizer", "async_save",
                             "layer_spec", "parameters")}
    out.update({
        "steps": plan["steps"], "micro_batch_size": plan["micro"],
        "global_batch_size": plan["micro"] * plan["accum"] * nproc, "resumed_at": b["start_iteration"],
        "resumed_losses_exact": resumed_ok and max(diffs, default=1.0) == 0.0,
        "resumed_losses_max_rel_diff": max(diffs) if diffs else None,
        "resumed_losses_match": resumed_ok and max(diffs, default=1.0) <= loss_rtol,
        "loss_first": a["losses"].get("1"), "loss_last": a["losses"].get(str(plan["steps"])),
        "seconds": round(time.perf_counter() - t0, 1),
    })
    shutil.rmtree(save, ignore_errors=True)  # 1.3b checkpoints with optimizer state are ~20 GB
    return out


def meta_plans(presets: list[str]) -> dict:
    """Each preset built on the meta device; its parameter count against plan's formula."""
    from babelmill.pretrain.sizing import plan

    out = {}
    for name in presets:
        p = plan(CONFIGS / f"{name}.yaml", meta=True)
        out[name] = {"params_total": p.params_total, "meta_params": p.meta_params,
                     "counts_match": p.meta_params == p.params_total,
                     "gib_per_gpu_planned": round(p.gib_total, 1),
                     "tensor": p.tensor, "pipeline": p.pipeline}
    return out


def synthetic_data(work: Path, docs_per_lang: int) -> Path:
    from babelmill.pretrain.data.preprocess import preprocess
    from testing import pretrain_corpus

    data = work / "data"
    if (data / "preprocess.json").is_file():
        return data
    tok = pretrain_corpus.train_tokenizer(work / "tokenizer.json", vocab_size=400)
    corpus = pretrain_corpus.write_corpus(work / "corpus", docs_per_lang=docs_per_lang, layout="jsonl")
    preprocess([corpus], tok, data, workers=1)
    return data


def te_status() -> dict:
    try:
        import transformer_engine  # noqa: F401

        te = getattr(transformer_engine, "__version__", "yes")
    except Exception as e:  # noqa: BLE001 - any import failure means: local spec
        te = f"not importable ({type(e).__name__})"
    from megatron.core.models.gpt import gpt_layer_specs

    return {"transformer_engine": te, "megatron_have_te": bool(getattr(gpt_layer_specs, "HAVE_TE", False))}


def _fmt(x, spec="{:.1f}"):
    return "-" if x is None else spec.format(x)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--leg"]:
        leg(*argv[1:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(ROOT / "bench" / "_work" / "gpu_check.json"))
    ap.add_argument("--work", default=str(ROOT / "bench" / "_work" / "gpu_check"))
    ap.add_argument("--dry", action="store_true", help="dry mode even if a GPU is present")
    ap.add_argument("--presets", default="125m,1.3b", help="GPU mode: presets to run")
    ap.add_argument("--data", help="a preprocessed DATA_DIR to use (default: a synthetic one)")
    ap.add_argument("--loss-rtol", type=float, default=None,
                    help="resumed losses must match within this relative difference "
                         "(default 0 on CPU, 2e-3 on GPU: some bf16 GPU kernels are not bitwise deterministic)")
    ap.add_argument("--require-mfu", type=float, default=None, help="fail unless the 1.3b MFU reaches this")
    a = ap.parse_args(argv)
    import torch

    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpu = gpus > 0 and not a.dry
    t0 = time.perf_counter()
    res: dict = {"mode": "gpu" if gpu else "dry", "gpus": gpus, **te_status()}
    if gpu:
        res["device"] = torch.cuda.get_device_name()
    res["meta_plans"] = meta_plans(["tiny", "125m", "1.3b", "8b"] if not gpu else a.presets.split(","))
    data = Path(a.data) if a.data else synthetic_data(work, 150 if gpu else 80)
    rtol = a.loss_rtol if a.loss_rtol is not None else (2e-3 if gpu else 0.0)
    plans = {p: GPU_PLAN[p] for p in a.presets.split(",")} if gpu else DRY_PLAN
    res["runs"] = {}
    for preset, plan in plans.items():
        print(f"gpu-check: {preset} ({'bf16 on ' + str(gpus) + ' GPU(s)' if gpu else 'fp32 on CPU, dry mode'}) ...",
              flush=True)
        res["runs"][preset] = run_preset(preset, plan, work, data, gpus if gpu else 1, gpu, rtol)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    ok = all(p["counts_match"] for p in res["meta_plans"].values()) and \
        all(r["resumed_losses_match"] for r in res["runs"].values())
    big = res["runs"].get("1.3b", {})
    if gpu and big:
        res["mfu_goal_1_3b"] = {"goal": 0.40, "mfu": big.get("mfu"), "met": (big.get("mfu") or 0) >= 0.40}
        if a.require_mfu is not None and (big.get("mfu") or 0) < a.require_mfu:
            ok = False
    res["ok"] = ok
    heads = []
    for name, r in res["runs"].items():
        heads.append(f"{name}: {_fmt(r['tokens_per_second_per_gpu'], '{:,.0f}')} tok/s/GPU, MFU "
                     f"{_fmt(r['mfu'] and 100 * r['mfu'])}%, peak {r['peak_memory_gib']:.1f} GiB, resume "
                     f"{'exact' if r['resumed_losses_exact'] else ('match' if r['resumed_losses_match'] else 'MISMATCH')}")
    res["headline"] = f"{res['mode']}: " + "; ".join(heads)
    print(f"\nmode {res['mode']}, GPUs {gpus}, Transformer Engine: {res['transformer_engine']}")
    print(f"{'preset':>7} {'params':>13} {'meta build':>13}  match")
    for name, p in res["meta_plans"].items():
        print(f"{name:>7} {p['params_total']:>13,} {p['meta_params']:>13,}  {p['counts_match']}")
    print(f"\n{'preset':>7} {'spec':>18} {'prec':>5} {'distopt':>7} {'async':>5} {'tok/s/GPU':>10} {'MFU%':>6} "
          f"{'peak GiB':>8} {'resume':>8} {'max rel diff':>12} {'s':>6}")
    for name, r in res["runs"].items():
        print(f"{name:>7} {r['layer_spec']:>18} {r['precision']:>5} {str(r['distributed_optimizer']):>7} "
              f"{str(r['async_save']):>5} {_fmt(r['tokens_per_second_per_gpu'], '{:,.0f}'):>10} "
              f"{_fmt(r['mfu'] and 100 * r['mfu']):>6} {r['peak_memory_gib']:>8.2f} "
              f"{('exact' if r['resumed_losses_exact'] else 'match' if r['resumed_losses_match'] else 'MISMATCH'):>8} "
              f"{_fmt(r['resumed_losses_max_rel_diff'], '{:.2e}'):>12} {r['seconds']:>6}")
    if "mfu_goal_1_3b" in res:
        g = res["mfu_goal_1_3b"]
        print(f"1.3b MFU goal 40%: {'met' if g['met'] else 'NOT met'} ({_fmt(g['mfu'] and 100 * g['mfu'])}%)")
    if not gpu:
        print("no GPU found: dry mode only (the GPU figures need a CUDA machine: run `make gpu-check` there)")
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1) + "\n")
    print(f"{'ok' if ok else 'FAILED'} in {res['seconds']} s; figures: {a.json}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
