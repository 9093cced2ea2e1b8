"""Rewrite a TP=1/PP=1 checkpoint with tensor (or pipeline) parallelism 2, under torchrun (2 ranks).

    python -m torch.distributed.run --nproc-per-node 2 -m tests.pretrain.reshard_helper SRC_CKPT OUT_DIR:TP:PP ...

For each OUT_DIR:TP:PP in turn, each rank builds its shard of the model (its TP slice / its pipeline stage), loads SRC_CKPT
into it through babelmill's safe_load (dist_checkpointing reshards TP1/PP1 -> TP/PP), and saves
it with CheckpointManager: a checkpoint laid out exactly as a TP/PP run writes one (its
trainer_state records the parallel sizes). Pipeline parallelism cannot *train* on CPU
(megatron's p2p communication is CUDA-only), so this is how the tests get a PP=2 checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch


def main(src: str, targets: list[tuple[str, int, int]]) -> None:
    from megatron.core import parallel_state

    from babelmill.pretrain import checkpoint as ck
    from babelmill.pretrain import cpu_compat
    from babelmill.pretrain.config import config_from_dict
    from babelmill.pretrain.distributed import init_model_parallel, init_process_group, shutdown
    from babelmill.pretrain.model import build_gpt
    from babelmill.pretrain.safe_load import safe_load

    cpu_compat.quiet_megatron_warnings()
    # megatron's tied-embedding setup for PP > 1 moves the shared weight with `.cuda()`
    torch.Tensor.cuda = lambda self, *a, **k: self
    info = init_process_group()
    for out, tp, pp in targets:
        if parallel_state.model_parallel_is_initialized():
            parallel_state.destroy_model_parallel()
        init_model_parallel(tp, pp)
        state = ck.load_trainer_state(Path(src))
        cfg = config_from_dict(state["config"])
        cfg.parallel.tensor, cfg.parallel.pipeline = tp, pp
        chunks, _ = build_gpt(cfg.model, state["vocab_size"], cfg, "fp32", for_inference=True)
        loaded = safe_load({"model": chunks[0].sharded_state_dict()}, src)
        chunks[0].load_state_dict(loaded["model"], strict=True)
        state = {**state, "config": cfg.model_dump(mode="json"), "weights_only": True}
        mgr = ck.CheckpointManager(out, keep_last=1, checksum="sha256", async_save=False)
        mgr.save(state["iteration"], chunks, None, state, tokenizer_json=str(Path(src) / "tokenizer.json"))
        mgr.close()
    shutdown(info)


if __name__ == "__main__":
    main(sys.argv[1], [(t.split(":")[0], int(t.split(":")[1]), int(t.split(":")[2])) for t in sys.argv[2:]])
