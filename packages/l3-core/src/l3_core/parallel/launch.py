"""Start N local ranks as separate processes (a minimal ``torchrun`` for tests and CPUs)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, threads: int, fn: Callable, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    import torch

    torch.set_num_threads(threads)
    fn(*args)


def spawn(world_size: int, fn: Callable[..., Any], *args: Any, threads: int = 1) -> None:
    """Run ``fn(*args)`` in ``world_size`` fresh processes with torch.distributed's env set.

    Raises if any rank fails (``torch.multiprocessing.ProcessRaisedException``).
    """
    mp.spawn(
        _entry, args=(world_size, _free_port(), threads, fn, args), nprocs=world_size, join=True
    )
