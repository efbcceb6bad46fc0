"""Run Megatron-core on a machine without CUDA, exactly as it runs on a GPU.

Megatron-core 0.16.1 assumes CUDA in a few dozen places outside the maths: it allocates with
``device="cuda"`` / ``device=torch.cuda.current_device()``, moves tensors with ``.cuda()``,
synchronises streams and events, saves the CUDA RNG state around recomputation, and the
optimizers classify parameters with ``param.type() == "torch.cuda.FloatTensor"``. None of
these change the numbers, so on a CPU-only machine, inside :func:`scope`, they mean "the CPU":

* a :class:`~torch.overrides.TorchFunctionMode` rewrites every CUDA ``device`` argument (of
  factory functions, ``Tensor.to`` and ``Tensor.cuda``) to the CPU, and reports CPU float
  tensors' ``type()`` under their CUDA name so the optimizers' type checks pass;
* ``torch.cuda`` streams, events and synchronisation become no-ops, ``current_device()``
  returns 0 (which the mode then maps to the CPU), and the "CUDA" RNG state that Megatron
  forks for dropout and recomputation is the CPU generator's;
* gloo lacks ``reduce_scatter_tensor`` and cannot run collectives under Megatron's
  ``_coalescing_manager``, which DDP and the distributed optimizer use to reduce-scatter
  gradients and all-gather parameters: on gloo those run synchronously, the reduce-scatter as
  an all-reduce and a slice (same sums on every rank) and the all-gather through a list;
* gloo matches point-to-point messages between two ranks in posting order, so when two
  pipeline stages exchange activations and gradients at once (the interleaved schedule with
  PP = 2) a gradient could land in the activation buffer: pipeline messages get a tag per
  direction, which NCCL's batched p2p does not need.

:func:`scope` is a context manager: it installs every patch on entry and removes every one on
exit (the torch-function mode exited, ``torch.cuda`` and ``torch.distributed`` attributes and
Megatron's internals restored). Scopes nest: only the outermost one installs and removes. It
does nothing when CUDA is available, so GPU runs never see this module. The Megatron internals
it replaces are named in :mod:`l3_core.parallel.megatron_adapter`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
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
    if dist.get_world_size(group) == 1:  # one rank: the shard is the whole (often the same memory)
        if output.data_ptr() != input.data_ptr():
            output.copy_(input.view_as(output))
        return None
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


def _all_gather_into_tensor(output, input, group=None, async_op=False):
    if dist.get_world_size(group) == 1:
        if output.data_ptr() != input.data_ptr():
            output.copy_(input.view_as(output))
        return _DoneWork() if async_op else None
    parts = list(output.chunk(dist.get_world_size(group)))
    dist.all_gather(parts, input.contiguous(), group=group)
    return _DoneWork() if async_op else None


class _Coalesced:
    """What ``_coalescing_manager`` yields; the wrapped collectives already ran synchronously."""

    def wait(self) -> None:
        pass


@contextlib.contextmanager
def _no_coalescing(group=None, device=None, async_ops=False):
    yield _Coalesced()


_TAG_FORWARD, _TAG_BACKWARD = 1, 2


def _tagged_batched_p2p_ops(
    *,
    tensor_send_prev,
    tensor_recv_prev,
    tensor_send_next,
    tensor_recv_next,
    group,
    prev_pipeline_rank,
    next_pipeline_rank,
):
    ops = []
    for tensor, op, peer, tag in (
        (tensor_send_prev, dist.isend, prev_pipeline_rank, _TAG_BACKWARD),
        (tensor_recv_prev, dist.irecv, prev_pipeline_rank, _TAG_FORWARD),
        (tensor_send_next, dist.isend, next_pipeline_rank, _TAG_FORWARD),
        (tensor_recv_next, dist.irecv, next_pipeline_rank, _TAG_BACKWARD),
    ):
        if tensor is not None:
            ops.append(dist.P2POp(op, tensor, peer, group, tag))
    return dist.batch_isend_irecv(ops) if ops else []


def _megatron_reduce_scatter(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
    _reduce_scatter_tensor(output, input, op=op, group=group)
    return _DoneWork() if async_op else None


def _cpu_rng_state(device: Any = "cuda", clone: bool = False, graph_safe: bool = False):
    return torch.get_rng_state()


def _set_cpu_rng_state(new_state: torch.Tensor, device: int = -1, graph_safe: bool = False) -> None:
    torch.set_rng_state(new_state)


def _gloo_aware_reduce_scatter(original: Callable) -> Callable:
    def reduce_scatter_tensor(output, input, op=dist.ReduceOp.SUM, group=None, async_op=False):
        if dist.get_backend(group) == "gloo":
            _reduce_scatter_tensor(output, input, op=op, group=group)
            return _DoneWork() if async_op else None
        return original(output, input, op=op, group=group, async_op=async_op)

    return reduce_scatter_tensor


def _patches() -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) for everything the scope swaps."""
    from l3_core.parallel import megatron_adapter

    cuda = torch.cuda
    stream = _Stream()
    torch_side = [
        (cuda, "current_device", lambda: 0),
        (cuda, "device_count", lambda: 1),
        (cuda, "synchronize", lambda *a, **k: None),
        (cuda, "empty_cache", lambda: None),
        (cuda, "set_device", lambda *a, **k: None),
        (cuda, "Stream", _Stream),
        (cuda, "Event", _Event),
        (cuda, "current_stream", lambda *a, **k: stream),
        (cuda, "default_stream", lambda *a, **k: stream),
        (cuda, "stream", lambda *a, **k: contextlib.nullcontext()),
        (cuda, "get_rng_state", lambda *a, **k: torch.get_rng_state()),
        (cuda, "set_rng_state", lambda state, *a, **k: torch.set_rng_state(state)),
        (cuda, "manual_seed", lambda seed: torch.manual_seed(seed)),
        (cuda, "memory_allocated", lambda *a, **k: 0),
        (cuda, "max_memory_allocated", lambda *a, **k: 0),
        (cuda.nvtx, "range_push", lambda *a, **k: None),
        (cuda.nvtx, "range_pop", lambda *a, **k: None),
        (dist, "reduce_scatter_tensor", _gloo_aware_reduce_scatter(dist.reduce_scatter_tensor)),
    ]
    return torch_side + megatron_adapter.cpu_patch_points(
        reduce_scatter=_megatron_reduce_scatter,
        all_gather=_all_gather_into_tensor,
        coalescing_manager=_no_coalescing,
        batched_p2p_ops=_tagged_batched_p2p_ops,
        get_rng_state=_cpu_rng_state,
        set_rng_state=_set_cpu_rng_state,
    )


class _Installed:
    """What the outermost scope put in place, so that exactly that is undone."""

    def __init__(self) -> None:
        patches = _patches()
        self.saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
        for owner, name, new in patches:
            setattr(owner, name, new)
        self.mode = _CudaAsCpu()
        self.mode.__enter__()

    def remove(self) -> None:
        self.mode.__exit__(None, None, None)
        for owner, name, old in reversed(self.saved):
            setattr(owner, name, old)


_depth = 0
_installed: _Installed | None = None


def active() -> bool:
    """Whether a scope has the patches installed in this process now."""
    return _installed is not None


@contextlib.contextmanager
def scope() -> Iterator[bool]:
    """Make Megatron-core run on the CPU inside the ``with`` block; yields whether it did
    (False when CUDA is available: nothing is patched)."""
    global _depth, _installed
    if torch.cuda.is_available():
        yield False
        return
    if _depth == 0:
        _installed = _Installed()
        log.debug("CUDA is absent: Megatron-core runs on the CPU (l3_core.parallel.cpu_compat)")
    _depth += 1
    try:
        yield True
    finally:
        _depth -= 1
        if _depth == 0 and _installed is not None:
            _installed.remove()
            _installed = None
