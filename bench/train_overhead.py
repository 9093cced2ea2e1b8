"""Pretraining benchmarks (CPU): the training loop's tokens/s vs a bare megatron-core
forward/backward/optimizer loop on the same tiny model and batch (target: overhead < 5%), and
Megatron preprocessing throughput (tokens/s per core) on a generated multilingual corpus.

    python -m bench.train_overhead [--json OUT]

`loop_overhead` times both loops on the same tiny model, optimizer and batch size in one
process. The bare loop reuses one pre-collated batch and does nothing but
`forward_backward_func` + `optimizer.step()`; ours is `Trainer.run()` (dataset reads, loss
all-reduce, scheduler, JSONL/TensorBoard logging, checkpoint polling) with eval and checkpoints
outside the timed window. Runs alternate (bare, ours, bare, ours, ...) so a noisy shared machine
affects both alike.

The corpus and tokenizer come from testing.pretrain_corpus (generated, seeded), so the figures
need no downloaded data and compare across machines.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

from babelmill.paths import config_file


def loop_overhead(steps: int = 40, rounds: int = 15, warmup: int = 5, work_dir: str | None = None,
                  threads: int | None = 1) -> dict:
    """Tokens/s of `Trainer.run()` vs the bare megatron-core loop, and the median overhead."""
    from babelmill.pretrain import cpu_compat
    from babelmill.pretrain.config import config_with_overrides, load_config
    from babelmill.pretrain.data.preprocess import preprocess
    from babelmill.pretrain.loop import Trainer, forward_step, microbatches
    from testing import pretrain_corpus

    cpu_compat.quiet_megatron_warnings()
    import torch

    if threads:  # one intra-op thread: far less noise from other jobs on a shared CPU host
        torch.set_num_threads(threads)
    work = Path(work_dir or tempfile.mkdtemp(prefix="bench-overhead-"))
    corpus = pretrain_corpus.write_corpus(work / "corpus", 150)
    tok = pretrain_corpus.train_tokenizer(work / "tokenizer.json", 400)
    preprocess([corpus], tok, work / "data", workers=1)
    total = warmup + rounds * steps + 1
    cfg = config_with_overrides(load_config(config_file("pretrain", "tiny.yaml")), {
        "train.train_iters": total + 10, "train.eval_interval": 10 ** 9, "train.log_interval": 10,
        "checkpoint.save_interval": 10 ** 9, "optimizer.warmup_iters": 1})
    tr = Trainer(cfg, str(work / "data"), str(work / "run"), progress=False, report=lambda m: None)
    tr.setup()
    t = cfg.train
    fixed = microbatches(tr.datasets.train, 0, tr.num_micro, t.micro_batch_size, tr.dp_size, tr.dp_rank,
                         tr.dist.device)
    tokens_per_step = t.global_batch_size * cfg.model.seq_length

    def bare(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            for m in tr.model:
                m.zero_grad_buffer()
            tr.optimizer.zero_grad()
            tr.fb(forward_step_func=forward_step, data_iterator=iter(fixed), model=tr.model,
                  num_microbatches=tr.num_micro, seq_length=cfg.model.seq_length,
                  micro_batch_size=t.micro_batch_size, forward_only=False)
            tr.optimizer.step()
        return n * tokens_per_step / (time.perf_counter() - t0)

    def ours(n: int) -> float:
        tr.exit_after = tr.iteration + n
        r = tr.run(save_at_exit=False)
        return r.tokens_per_second

    try:
        bare(warmup)
        tr.exit_after = warmup
        tr.run(save_at_exit=False)
        tr.metrics.enabled = True
        b_all, o_all = [], []
        for _ in range(rounds):
            b_all.append(bare(steps))
            tr.metrics = type(tr.metrics)(tr.save_dir, enabled=True, resume_iteration=tr.iteration,
                                          progress=False)
            o_all.append(ours(steps))
    finally:
        tr.close()
    # Each loop round runs right after a bare round, so a slow spell of the (shared, noisy) host
    # hits both of a pair: the overhead is the median over pairs of 1 - loop/bare.
    pairs = sorted(1 - o / b for b, o in zip(b_all, o_all, strict=True))
    b, o = sorted(b_all)[len(b_all) // 2], sorted(o_all)[len(o_all) // 2]
    return {"steps_per_round": steps, "rounds": rounds, "bare_tokens_per_s": round(b, 1),
            "loop_tokens_per_s": round(o, 1), "overhead_percent": round(100 * pairs[len(pairs) // 2], 2),
            "overhead_percent_per_pair": [round(100 * x, 2) for x in pairs],
            "bare_runs": [round(x, 1) for x in b_all], "loop_runs": [round(x, 1) for x in o_all],
            "tokens_per_step": tokens_per_step}


def preprocess_throughput(docs_per_lang: int = 3000, workers: int = 1, corpus: str | None = None,
                          tokenizer_json: str | None = None, work_dir: str | None = None) -> dict:
    """Preprocess throughput: tokens/s per core on a generated multilingual corpus (or your own)."""
    from babelmill.pretrain.data.preprocess import preprocess
    from testing import pretrain_corpus

    work = Path(work_dir or tempfile.mkdtemp(prefix="bench-preprocess-"))
    src = corpus or str(pretrain_corpus.write_corpus(work / "corpus", docs_per_lang, layout="parquet"))
    tok = tokenizer_json or str(pretrain_corpus.train_tokenizer(work / "tokenizer.json", 400))
    t0 = time.perf_counter()
    m = preprocess([src], tok, work / f"data-{time.time_ns()}", workers=workers)
    wall = time.perf_counter() - t0
    return {"documents": m["documents"], "tokens": m["tokens"], "workers": m["workers"],
            "wall_seconds": round(wall, 2),
            "tokens_per_second_per_core": round(m["tokens"] / wall / m["workers"], 1),
            "tokenize_tokens_per_second_per_worker": m["tokens_per_second_per_worker"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json")
    ap.add_argument("--steps", type=int, default=int(40 * float(os.environ.get("BENCH_SCALE", "1"))))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    loop = loop_overhead(steps=args.steps)
    pre = preprocess_throughput()
    res = {"loop": loop, "preprocess": pre,
           "headline": (f"loop overhead {loop['overhead_percent']:.1f}% vs bare megatron-core "
                        f"({loop['loop_tokens_per_s']:,.0f} vs {loop['bare_tokens_per_s']:,.0f} tokens/s, target < 5%); "
                        f"preprocess {pre['tokens_per_second_per_core']:,.0f} tokens/s/core")}
    print(f"training loop : {loop['loop_tokens_per_s']:>10,.0f} tokens/s | bare megatron-core loop "
          f"{loop['bare_tokens_per_s']:>10,.0f} tokens/s | overhead {loop['overhead_percent']:.2f}% (target < 5%)")
    print(f"preprocess    : {pre['tokens_per_second_per_core']:>10,.0f} tokens/s per core "
          f"({pre['tokens']:,} tokens, {pre['documents']:,} documents)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
