"""Pretraining benchmarks (CPU): the training loop's tokens/s vs a bare megatron-core
forward/backward/optimizer loop on the same tiny model and batch (target: overhead < 5%), and
Megatron preprocessing throughput (tokens/s per core). Wraps babelmill.pretrain.bench_*.

    python -m bench.train_overhead [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--json")
    ap.add_argument("--steps", type=int, default=int(40 * float(os.environ.get("BENCH_SCALE", "1"))))
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from babelmill.pretrain import bench_overhead, bench_preprocess

    loop = bench_overhead.measure(steps=args.steps)
    pre = bench_preprocess.measure()
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
