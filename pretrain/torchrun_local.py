"""`python -m babelmill.pretrain.torchrun_local ...`: torchrun whose rendezvous store stays on loopback.

torchrun's agent (static rendezvous, i.e. `--master-addr/--master-port`) creates the job's
TCPStore server, and torch's TCPStore listens on every interface whatever host name it is
given. For a single-node job (`--master-addr 127.0.0.1`) nothing outside the machine needs to
reach it, so this wrapper makes the agent bind the store's socket to the loopback address itself
and hand it over (`master_listen_fd`). For any other master address torchrun is unchanged
(multi-node jobs need a reachable store). Arguments are torchrun's; launch/torchrun.sh uses it.
"""

from __future__ import annotations

import sys


def _patch_static_rendezvous() -> None:
    import torch.distributed as dist
    from torch.distributed.elastic.rendezvous import static_tcp_rendezvous as rdzv

    from babelmill.pretrain.distributed import is_loopback, listening_socket

    tcp_store = dist.TCPStore

    def loopback_store(host_name, port, world_size=None, is_master=False, *args, **kwargs):
        if not (is_master and is_loopback(host_name)) or "master_listen_fd" in kwargs:
            return tcp_store(host_name, port, world_size, is_master, *args, **kwargs)
        sock = listening_socket("127.0.0.1" if host_name == "localhost" else host_name, port)
        kwargs.setdefault("use_libuv", True)
        store = tcp_store(host_name, port, world_size, is_master, *args, master_listen_fd=sock.fileno(),
                          **kwargs)
        sock.detach()  # the store owns the descriptor now
        return store

    rdzv.TCPStore = loopback_store


def main(argv: list[str] | None = None) -> None:
    from torch.distributed import run

    _patch_static_rendezvous()
    run.main(list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
