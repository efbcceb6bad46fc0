"""Run Megatron-core on a machine without CUDA, exactly as it runs on a GPU.

Megatron-core 0.16.1 assumes CUDA in a few dozen places outside the maths: it allocates with
``device="cuda"`` / ``device=torch.cuda.current_device()``, moves tensors with ``.cuda()``,
synchronises streams and events, saves the CUDA RNG state around recomputation, and the
optimizers classify parameters with ``param.type() == "torch.cuda.FloatTensor"``. None of
these change the numbers, so on a CPU-only machine :func:`apply` makes them mean "the CPU":

* a :class:`~torch.overrides.TorchFunctionMode` rewrites every CUDA ``device`` argument (of
  factory functions, ``Tensor.to`` and ``Tensor.cuda``) to the CPU, and reports CPU float
  tensors' ``type()`` under their CUDA name so the optimizers' type checks pass;
* ``torch.cuda`` streams, events and synchronisation become no-ops, ``current_device()``
  returns 0 (which the mode then maps to the CPU), and the "CUDA" RNG state that Megatron
  forks for dropout and recomputation is the CPU generator's;
* gloo lacks ``reduce_scatter_tensor``, which the distributed optimizer uses: it is emulated
  with an all-reduce and a slice (same sums, same order on every rank).

:func:`apply` does nothing when CUDA is available, so GPU runs never see this module.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

log = logging.getLogger(__name__)

_CUDA_TYPE_NAMES = {
    "torch.FloatTensor": "torch.cuda.FloatTensor",
    "torch.HalfTensor": "torch.cuda.HalfTensor",
    "torch.BFloat16Tensor": "torch.cuda.BFloat16Tensor",
}
_applied = False
_mode: TorchFunctionMode | None = None


def _to_cpu_device(device: Any) -> Any:
    if isinstance(device, int) and not isinstance(device, bool):
        return torch.device("cpu")
    if isinstance(device, str) and device.startswith("cuda"):
        return torch.device("cpu")
    if isinstance(device, torch.device) and device.type == "cuda":
        return torch.device("cpu")
    return device


class _CudaAsCpu(TorchFunctionMode):
    """Maps CUDA devices to the CPU; see the module docstring."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.cuda:
            return args[0]
        if func is torch.Tensor.type and len(args) == 1 and not kwargs:
            name = func(*args)
            return _CUDA_TYPE_NAMES.get(name, name)
        if "device" in kwargs:
            kwargs["device"] = _to_cpu_device(kwargs["device"])
        if func is torch.Tensor.to and len(args) > 1:
            args = (args[0], _to_cpu_device(args[1]), *args[2:])
        return func(*args, **kwargs)


class _Stream:
    """Stands in for ``torch.cuda.Stream``: the CPU runs everything in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def wait_stream(self, other: Any) -> None:
        pass

    def wait_event(self, event: Any) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def record_event(self, event: Any = None) -> _Event:
        return event or _Event()


class _Event:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def record(self, stream: Any = None) -> None:
        pass

    def wait(self, stream: Any = None) -> None:
        pass

    def synchronize(self) -> None:
        pass

    def query(self) -> bool:
        return True

    def elapsed_time(self, other: Any) -> float:
        return 0.0


def _reduce_scatter_tensor(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
    # gloo has no reduce-scatter: all-reduce a copy, keep this rank's slice.
    full = input.clone()
    work = dist.all_reduce(full, op=op, group=group)
    rank = dist.get_rank(group)
    output.copy_(full.view(dist.get_world_size(group), -1)[rank].view_as(output))
    return work if async_op else None


class _DoneWork:
    def wait(self) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


def _patch_megatron_rng() -> None:
    from megatron.core.tensor_parallel import random as mrandom

    def get_state(device: Any = "cuda", clone: bool = False, graph_safe: bool = False):
        return torch.get_rng_state()

    def set_state(new_state: torch.Tensor, device: int = -1, graph_safe: bool = False) -> None:
        torch.set_rng_state(new_state)

    mrandom._get_cuda_rng_state = get_state
    mrandom._set_cuda_rng_state = set_state


def apply() -> bool:
    """Make Megatron-core run on the CPU; return True if applied (False with CUDA present)."""
    global _applied, _mode
    if torch.cuda.is_available():
        return False
    if _applied:
        return True
    cuda = torch.cuda
    cuda.current_device = lambda: 0
    cuda.device_count = lambda: 1
    cuda.synchronize = lambda *a, **k: None
    cuda.empty_cache = lambda: None
    cuda.set_device = lambda *a, **k: None
    cuda.Stream = _Stream
    cuda.Event = _Event
    _default_stream = _Stream()
    cuda.current_stream = lambda *a, **k: _default_stream
    cuda.default_stream = lambda *a, **k: _default_stream
    cuda.stream = lambda *a, **k: contextlib.nullcontext()
    cuda.get_rng_state = lambda *a, **k: torch.get_rng_state()
    cuda.set_rng_state = lambda state, *a, **k: torch.set_rng_state(state)
    cuda.manual_seed = lambda seed: None  # the CPU generator is seeded by the trainer
    cuda.memory_allocated = lambda *a, **k: 0
    cuda.max_memory_allocated = lambda *a, **k: 0
    cuda.nvtx.range_push = lambda *a, **k: None
    cuda.nvtx.range_pop = lambda *a, **k: None
    _original_reduce_scatter = dist.reduce_scatter_tensor

    def reduce_scatter_tensor(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
        if dist.get_backend(group) == "gloo":
            _reduce_scatter_tensor(output, input, op=op, group=group)
            return _DoneWork() if async_op else None
        return _original_reduce_scatter(output, input, op=op, group=group, async_op=async_op)

    dist.reduce_scatter_tensor = reduce_scatter_tensor
    _patch_megatron_rng()
    _mode = _CudaAsCpu()
    _mode.__enter__()
    _applied = True
    log.info("CUDA is absent: Megatron-core runs on the CPU through l3_core.parallel.cpu_compat")
    return True
