"""Process-group and model-parallel setup shared by training, inference and the benchmarks.

Under torchrun (RANK/WORLD_SIZE/MASTER_ADDR set) we join the launcher's group: NCCL on GPU,
gloo on CPU. Launched as a plain process, we create a one-process group ourselves, so
`babelmill pretrain train` and `MegatronLM(...)` work without a launcher.

The rendezvous store of that group is a TCPStore server, and torch's TCPStore listens on every
interface whatever host name it is given (the name is only what clients dial). A training or
audit process on a shared machine would so accept connections from the network to a store that
coordinates the run. For a standalone process we therefore bind the listening socket ourselves,
to MASTER_ADDR when it is set and 127.0.0.1 otherwise, and hand it to the TCPStore
(`master_listen_fd`); gloo's own sockets are put on the loopback interface too when the
address is a loopback one. Single-node torchrun launches get the same through
`babelmill.pretrain.torchrun_local` (see launch/torchrun.sh).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import socket
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch

from babelmill.pretrain import cpu_compat

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listening_socket(host: str, port: int = 0) -> socket.socket:
    """A socket listening on exactly host:port (port 0: the kernel picks a free one)."""
    family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    s.listen(128)
    return s


def loopback_gloo() -> None:
    """Keep gloo's sockets on the loopback interface (it otherwise uses the host name's address)."""
    if "GLOO_SOCKET_IFNAME" in os.environ:
        return
    names = {name for _, name in socket.if_nameindex()}
    lo = next((n for n in ("lo", "lo0") if n in names), None)
    if lo is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = lo


def standalone_store(timeout: timedelta):
    """The TCPStore of a one-process group, listening on MASTER_ADDR (default 127.0.0.1) only."""
    host = os.environ.get("MASTER_ADDR") or LOOPBACK
    sock = listening_socket(LOOPBACK if host == "localhost" else host)
    port = sock.getsockname()[1]
    store = torch.distributed.TCPStore(host, port, world_size=1, is_master=True, timeout=timeout,
                                       master_listen_fd=sock.fileno(), use_libuv=True)
    sock.detach()  # the store owns the descriptor now (and closes it)
    if is_loopback(host):
        loopback_gloo()
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = host, str(port)
    log.debug("standalone process group: store on %s:%d", host, port)
    return store


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
        timeout = timedelta(minutes=30)
        store = None
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
            rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            if is_loopback(os.environ.get("MASTER_ADDR", "")):
                loopback_gloo()
        else:
            rank, world = 0, 1
            os.environ.setdefault("LOCAL_RANK", "0")
            store = standalone_store(timeout)
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if use_cuda:
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
        torch.distributed.init_process_group(
            backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world,
            timeout=timeout, store=store)
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
