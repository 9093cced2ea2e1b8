"""Process-group and model-parallel setup shared by training, inference and the benchmarks.

Under torchrun (RANK/WORLD_SIZE/MASTER_ADDR set) we join the launcher's group: NCCL on GPU,
gloo on CPU. Launched as a plain process, we create a one-process gloo group on a free loopback
port, so `babelmill pretrain train` and `MegatronLM(...)` work without a launcher.
"""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch

from . import cpu_compat


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    created_group: bool  # we created the process group (and should destroy it)


def init_process_group() -> DistInfo:
    """Join torchrun's group, or make a single-process gloo group when run standalone."""
    cpu_compat.apply()
    use_cuda = torch.cuda.is_available()
    created = False
    if not torch.distributed.is_initialized():
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        else:
            rank, world = 0, 1
            os.environ["MASTER_ADDR"] = "127.0.0.1"
            os.environ["MASTER_PORT"] = str(free_port())
            os.environ.setdefault("LOCAL_RANK", "0")
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        torch.distributed.init_process_group(
            backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world,
            timeout=timedelta(minutes=30))
        created = True
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    return DistInfo(rank, world, local_rank, device, created)


def init_model_parallel(tensor: int = 1, pipeline: int = 1, virtual_pipeline: int | None = None) -> None:
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        return
    world = torch.distributed.get_world_size()
    if world % (tensor * pipeline):
        raise ValueError(f"world size {world} is not divisible by tensor x pipeline parallel "
                         f"= {tensor} x {pipeline}")
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=tensor,
        pipeline_model_parallel_size=pipeline,
        virtual_pipeline_model_parallel_size=virtual_pipeline,
    )


def set_seed(seed: int) -> None:
    """Seed python/numpy/torch; on GPU also megatron's TP-aware CUDA RNG tracker."""
    from megatron.core import parallel_state

    pp_rank = parallel_state.get_pipeline_model_parallel_rank()
    seed = seed + 100 * pp_rank
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        from megatron.core import tensor_parallel

        tensor_parallel.model_parallel_cuda_manual_seed(seed)


def shutdown(info: DistInfo | None) -> None:
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if info is not None and info.created_group and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
