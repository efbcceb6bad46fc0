"""Helpers shared by the benchmarks: timing, the machine's matmul peak, result printing."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def best_of(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``repeats`` calls after ``warmup`` calls (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def best_of_interleaved(
    fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1
) -> dict[str, float]:
    """Best wall time of each function, alternating them so that load from other processes
    falls on all of them alike (seconds)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def synced(fn: Callable[[], object], device: torch.device) -> Callable[[], object]:
    """``fn`` followed by a device synchronisation, so wall time covers queued GPU work."""
    if device.type != "cuda":
        return fn

    def run() -> None:
        fn()
        torch.cuda.synchronize(device)

    return run


def matmul_peak(
    dtype: torch.dtype, n: int = 2048, repeats: int = 5, device: torch.device | str = "cpu"
) -> float:
    """Achieved FLOP/s of an n x n x n matmul: the practical peak the models are judged by."""
    device = torch.device(device)
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    t = best_of(synced(lambda: a @ b, device), repeats=repeats, warmup=2)
    return 2 * n**3 / t


def machine_peak(dtype: torch.dtype, device: torch.device | str = "cpu") -> float:
    """The best matmul FLOP/s over a few square sizes (a single size under-reads on some CPUs)."""
    sizes = (1024, 2048, 3072) if torch.device(device).type == "cpu" else (8192,)
    return max(matmul_peak(dtype, n, repeats=8, device=device) for n in sizes)


def report(name: str, ours: float, peer: float, unit: str, peer_name: str) -> str:
    line = f"{name:<44} ours {ours:>12,.1f} {unit:<9} {peer_name} {peer:>12,.1f}  ratio {ours / peer:5.2f}x"
    print(line, flush=True)
    return line
