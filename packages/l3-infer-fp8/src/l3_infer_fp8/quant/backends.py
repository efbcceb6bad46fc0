"""The FP8 row-wise GEMM, by backend: ``out = (qx @ qw.T) * sx * sw.T`` in the output dtype.

- ``scaled_mm``: ``torch._scaled_mm`` with row-wise scales ([m, 1] and [1, n], float32), fp32
  accumulation; on CUDA with fast accumulation when ``fast_accum`` is set (the FFN's K is a
  few thousand, where fbgemm and vLLM use it too). Runs on CUDA (compute capability 8.9+,
  dimensions multiples of 16) and on the CPU.
- ``emulated``: the same product in bf16 math: the e4m3 codes are exact in bf16, so
  ``F.linear`` of the codes gives the exact products with fp32 accumulation, rounded once to
  bf16; the scales are applied after, in float32. (float32 models use float32 math.)

``select_backend(device, ...)`` picks the fastest supported one for the device, timed once per
device in the process (on this CPU ``emulated`` is an order of magnitude faster than the CPU
``_scaled_mm``; see ``benchmarks/bench_infer_fp8_gemm.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from l3_infer_fp8.errors import InferConfigError
from l3_infer_fp8.quant.rowwise import FP8_DTYPE

log = logging.getLogger(__name__)

Matmul = Callable[
    [torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.dtype, bool], torch.Tensor
]


@dataclass(frozen=True)
class Backend:
    """A way to run the row-wise FP8 GEMM: ``matmul(qx, sx, qw, sw, out_dtype, fast_accum)``
    and whether it runs on a device for a weight of ``out_features x in_features``."""

    name: str
    matmul: Matmul
    supports: Callable[[torch.device, int, int], bool]


def _scaled_mm(
    qx: torch.Tensor,
    sx: torch.Tensor,
    qw: torch.Tensor,
    sw: torch.Tensor,
    out_dtype: torch.dtype,
    fast_accum: bool,
) -> torch.Tensor:
    # qw is [n, k] row-major, so qw.t() is the column-major [k, n] operand _scaled_mm wants.
    return torch._scaled_mm(
        qx,
        qw.t(),
        scale_a=sx,
        scale_b=sw.t(),
        out_dtype=out_dtype,
        use_fast_accum=fast_accum and qx.device.type == "cuda",
    )


def _scaled_mm_supports(device: torch.device, out_features: int, in_features: int) -> bool:
    if device.type == "cpu":
        return True
    if device.type != "cuda":
        return False
    rowwise_capable = torch.cuda.get_device_capability(device) >= (8, 9)
    return rowwise_capable and out_features % 16 == 0 and in_features % 16 == 0


def _emulated(
    qx: torch.Tensor,
    sx: torch.Tensor,
    qw: torch.Tensor,
    sw: torch.Tensor,
    out_dtype: torch.dtype,
    fast_accum: bool,
) -> torch.Tensor:
    del fast_accum  # one accumulation only
    math = torch.float32 if out_dtype == torch.float32 else torch.bfloat16
    acc = F.linear(qx.to(math), qw.to(math))
    return (acc.float() * sx * sw.t()).to(out_dtype)


def _everywhere(device: torch.device, out_features: int, in_features: int) -> bool:
    return True


BACKENDS: dict[str, Backend] = {
    "scaled_mm": Backend("scaled_mm", _scaled_mm, _scaled_mm_supports),
    "emulated": Backend("emulated", _emulated, _everywhere),
}

# Shape timed to choose between backends: a decode-sized batch over an FFN-like weight.
_PROBE_SHAPE = (32, 1024, 1024)  # m, n, k
_preferred: dict[str, str] = {}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise InferConfigError(
            f"unknown FP8 backend {name!r}: use 'auto' or one of {sorted(BACKENDS)}"
        ) from None


def time_backend(
    backend: Backend, device: torch.device, shape: tuple[int, int, int], repeats: int = 3
) -> float:
    """Best-of-``repeats`` seconds of one GEMM of ``shape`` (m, n, k) on ``device``."""
    m, n, k = shape
    g = torch.Generator().manual_seed(0)
    qx = torch.randn(m, k, generator=g).to(device=device, dtype=FP8_DTYPE)
    qw = torch.randn(n, k, generator=g).to(device=device, dtype=FP8_DTYPE)
    sx = torch.ones(m, 1, device=device)
    sw = torch.ones(n, 1, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        backend.matmul(qx, sx, qw, sw, torch.bfloat16, True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def select_backend(
    device: torch.device | str, out_features: int, in_features: int, name: str = "auto"
) -> Backend:
    """The backend ``name``, or for ``"auto"`` the fastest one that supports the device and
    shape (measured once per device and cached)."""
    device = torch.device(device)
    if name != "auto":
        backend = get_backend(name)
        if not backend.supports(device, out_features, in_features):
            raise InferConfigError(
                f"FP8 backend {name!r} does not run on {device} for a "
                f"{out_features}x{in_features} weight"
            )
        return backend
    candidates = [b for b in BACKENDS.values() if b.supports(device, out_features, in_features)]
    if len(candidates) == 1:
        return candidates[0]
    key = str(device)
    if key not in _preferred:
        timings = {
            b.name: time_backend(b, device, _PROBE_SHAPE)
            for b in BACKENDS.values()
            if b.supports(device, *_PROBE_SHAPE[1:])
        }
        _preferred[key] = min(timings, key=timings.__getitem__)
        log.info(
            "FP8 backend on %s: %s (timed %s)",
            key,
            _preferred[key],
            {k: f"{v * 1e3:.2f} ms" for k, v in timings.items()},
        )
    preferred = BACKENDS[_preferred[key]]
    return preferred if preferred in candidates else candidates[0]
