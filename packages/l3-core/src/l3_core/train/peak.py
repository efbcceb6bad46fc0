"""Peak FLOP/s of one device, the denominator of MFU."""

from __future__ import annotations

import functools
import time

import torch

# Dense (no sparsity) tensor-core peaks from NVIDIA's data sheets.
_GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}


@functools.lru_cache(maxsize=2)
def device_peak_flops(bf16: bool) -> float:
    """The GPU's data-sheet peak, or on a CPU a measured large-matmul rate in the run's dtype.

    A CPU has no data-sheet figure that matters here, so MFU on a CPU is relative to what a
    2048^3 matmul actually achieves on this machine with the threads torch uses.
    """
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for key, peak in _GPU_PEAK_BF16.items():
            if key in name:
                return peak if bf16 else peak / 2  # TF32 dense is half the BF16 rate
        return 312e12
    dtype = torch.bfloat16 if bf16 else torch.float32
    gen = torch.Generator().manual_seed(0)  # leave the global RNG alone
    a = torch.randn(2048, 2048, generator=gen).to(dtype)
    b = torch.randn(2048, 2048, generator=gen).to(dtype)
    a @ b  # warm-up
    reps, t0 = 3, time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * 2048**3 * reps / (time.perf_counter() - t0)
