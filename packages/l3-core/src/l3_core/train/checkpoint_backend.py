"""How a training checkpoint's plain tensors are gathered from, and cut into, sharded state.

:mod:`l3_core.train.checkpoint` writes and reads the on-disk format (unsharded fp32 weights and
Adam moments under the plain model's names); a :class:`CheckpointBackend` knows where those
tensors live in a running job:

* ``"megatron"``: Megatron DDP with the distributed optimizer (ZeRO-1): each DP rank owns a
  contiguous range of some parameters' fp32 main copy and moments, and TP ranks hold shards;
* ``"fsdp"``: torch FSDP2, parameters and moments are DTensors sharded over the DP group.

Either gathers the whole state to rank 0 (:meth:`CheckpointBackend.gather`, for the plain
format) or gives each rank its tensor-parallel slice of every plain tensor
(:meth:`CheckpointBackend.local_plain`, for per-rank distributed checkpoints,
:mod:`l3_core.train.distributed_checkpoint`).

The trainer picks one by name when it builds the model (:func:`checkpoint_backend`). Frozen
parameters (an objective's :meth:`~l3_core.train.objective.Objective.trains`) are saved with
their values and zero moments, so the format does not depend on what trained.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import torch
import torch.distributed as dist

from l3_core.args import ModelArgs
from l3_core.checkpoint.megatron import REPLICATED, ParamMapping, chunk_mappings, to_full, to_local
from l3_core.errors import CheckpointError

MOMENTS = ("exp_avg", "exp_avg_sq")


@dataclass
class PlainState:
    """Unsharded fp32 tensors under plain names: weights, ``"<moment>/<name>"`` moments, step."""

    weights: dict[str, torch.Tensor]
    moments: dict[str, torch.Tensor] | None
    adam_step: int


#: the dimension along which tensor parallelism cuts each sharded kind's plain tensors
SPLIT_DIM = {"vocab": 0, "row": 1, "fc1": 0, "qkv": 0}


@dataclass
class LocalState:
    """This rank's tensor-parallel slice of plain tensors (same keys as :class:`PlainState`,
    moments under ``"<moment>/<name>"``) and the dimension each is cut along (None: whole)."""

    tensors: dict[str, torch.Tensor]
    split_dims: dict[str, int | None]
    adam_step: int


def fuse_local(kind: str, parts: list[torch.Tensor], args: ModelArgs) -> torch.Tensor:
    """A Megatron parameter's TP-local shard from its plain tensors' TP-local slices (the
    inverse of ``to_full(kind, [shard], args)``)."""
    if kind != "qkv":
        return to_local(kind, parts, args, 0, 1)
    wq, wk, wv = parts  # this rank's KV groups: the group count comes from the slice's rows
    hd, h, per = args.head_dim, wq.shape[1], args.n_heads // args.kv_heads
    fused = torch.cat(
        [wq.reshape(-1, per * hd, h), wk.reshape(-1, hd, h), wv.reshape(-1, hd, h)], dim=1
    )
    return fused.reshape(-1, h)


class CheckpointBackend(ABC):
    """Gathers and loads one job's model chunks and optimizer state in the plain layout."""

    def __init__(self, chunks: list[torch.nn.Module], optimizer, args: ModelArgs) -> None:
        self.chunks = chunks
        self.optimizer = optimizer
        self.args = args

    @abstractmethod
    def gather(self) -> PlainState | None:
        """The whole state on global rank 0, None elsewhere (collective: every rank calls it)."""

    @abstractmethod
    def load(self, state: PlainState) -> None:
        """Set this rank's weights (and, with moments, Adam state) from the plain tensors."""

    @abstractmethod
    def local_plain(self) -> LocalState:
        """This rank's slice of every plain tensor (collective: every rank calls it)."""

    @abstractmethod
    def load_local(self, state: LocalState) -> None:
        """Set this rank's weights and Adam state from its slices (as :meth:`local_plain`)."""


def _cut(
    mapping: ParamMapping,
    src: dict[str, torch.Tensor],
    prefix: str,
    args: ModelArgs,
    tp_rank: int,
    tp: int,
) -> torch.Tensor:
    try:
        full = [src[prefix + n] for n in mapping.plain_names]
    except KeyError as e:
        raise CheckpointError(f"checkpoint lacks tensor {e.args[0]!r}") from None
    return to_local(mapping.kind, full, args, tp_rank, tp)


def _check_shape(mapping: ParamMapping, t: torch.Tensor, p: torch.Tensor) -> None:
    if tuple(t.shape) != tuple(p.shape):
        raise CheckpointError(
            f"checkpoint tensors {mapping.plain_names} give shape {tuple(t.shape)} for "
            f"{mapping.megatron_name}, the model has {tuple(p.shape)}"
        )


class _TensorParallelBackend(CheckpointBackend):
    """Gathering from the TP-local whole tensors each backend assembles over its DP group."""

    @abstractmethod
    def _tp_local(self) -> dict[str, dict[int, torch.Tensor]]:
        """``"param"`` and each moment -> id(model param) -> its whole TP-local tensor."""

    @abstractmethod
    def _adam_step(self) -> int:
        """The optimizer's step count (0 before the first step)."""

    @abstractmethod
    def _load(
        self, shard: Callable[[ParamMapping, str], torch.Tensor], adam_step: int | None
    ) -> None:
        """Copy ``shard(mapping, prefix)`` (this rank's TP shard; prefix ``""`` for weights,
        ``"<moment>/"`` for moments) into the model and the optimizer; moments only when
        ``adam_step`` is given."""

    def load_local(self, state: LocalState) -> None:
        def shard(mapping: ParamMapping, prefix: str) -> torch.Tensor:
            try:
                parts = [state.tensors[prefix + n] for n in mapping.plain_names]
            except KeyError as e:
                raise CheckpointError(f"checkpoint lacks tensor {e.args[0]!r}") from None
            return fuse_local(mapping.kind, parts, self.args)

        self._load(shard, state.adam_step)

    def load(self, state: PlainState) -> None:
        from megatron.core import parallel_state as ps

        tp_rank = ps.get_tensor_model_parallel_rank()
        tp = ps.get_tensor_model_parallel_world_size()

        def shard(mapping: ParamMapping, prefix: str) -> torch.Tensor:
            src = state.weights if prefix == "" else state.moments
            assert src is not None  # moments are asked for only when the state holds them
            return _cut(mapping, src, prefix, self.args, tp_rank, tp)

        self._load(shard, None if state.moments is None else state.adam_step)

    def local_plain(self) -> LocalState:
        from megatron.core import parallel_state as ps

        tp = ps.get_tensor_model_parallel_world_size()
        local = self._tp_local()
        tensors: dict[str, torch.Tensor] = {}
        dims: dict[str, int | None] = {}
        for chunk in self.chunks:
            for mapping, p in chunk_mappings(chunk, self.args):
                dim = SPLIT_DIM.get(mapping.kind) if tp > 1 else None
                for key, views in local.items():
                    prefix = "" if key == "param" else f"{key}/"
                    parts = to_full(mapping.kind, [views[id(p)]], self.args)
                    for name, t in zip(mapping.plain_names, parts):
                        tensors[prefix + name] = t.cpu().contiguous()
                        dims[prefix + name] = dim
        return LocalState(tensors, dims, self._adam_step())

    def gather(self) -> PlainState | None:
        from megatron.core import parallel_state as ps

        tp_group = ps.get_tensor_model_parallel_group()
        tp = ps.get_tensor_model_parallel_world_size()
        local = self._tp_local()
        out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in local}
        for chunk in self.chunks:
            for mapping, p in chunk_mappings(chunk, self.args):
                for key, views in local.items():
                    t = views[id(p)]
                    if tp > 1 and mapping.kind not in REPLICATED:
                        parts = [torch.empty_like(t) for _ in range(tp)]
                        dist.all_gather(parts, t.contiguous(), group=tp_group)
                    else:
                        parts = [t]
                    for name, full in zip(
                        mapping.plain_names, to_full(mapping.kind, parts, self.args)
                    ):
                        out[key][name] = full.cpu().clone()
        dp_rank = ps.get_data_parallel_rank(with_context_parallel=True)
        keep = dp_rank == 0 and ps.get_tensor_model_parallel_rank() == 0
        gathered: list[dict[str, dict[str, torch.Tensor]] | None] | None = (
            [None] * dist.get_world_size() if dist.get_rank() == 0 else None
        )
        dist.gather_object(out if keep else None, gathered, dst=0)
        if gathered is None:  # not rank 0
            return None
        merged: dict[str, dict[str, torch.Tensor]] = {k: {} for k in local}
        for part in gathered:
            if part is not None:
                for k in part:
                    merged[k].update(part[k])
        moments = {f"{k}/{n}": t for k in MOMENTS for n, t in merged[k].items()}
        return PlainState(merged["param"], moments, self._adam_step())


class MegatronBackend(_TensorParallelBackend):
    """Megatron DDP + distributed optimizer; see the module docstring."""

    def __init__(self, chunks, optimizer, args: ModelArgs) -> None:
        from l3_core.parallel import megatron_adapter

        super().__init__(chunks, optimizer, args)
        self.slots = {
            id(p): (shard, sl, inner)
            for p, shard, sl, inner in megatron_adapter.param_slots(optimizer)
        }

    def _full_local(self, key: str, dp_group, dp_rank: int) -> dict[int, torch.Tensor]:
        """id(model param) -> the whole (TP-local) tensor of ``key``, assembled across DP ranks.

        Each DP rank owns a contiguous range of some parameters (possibly none of one); ranks
        fill what they own into zeros and a sum over the DP group assembles every parameter.
        Frozen parameters are not in the optimizer: DP rank 0 contributes their values.
        """
        params = [p for c in self.chunks for p in c.parameters()]
        device = params[0].device if params else "cpu"  # NCCL reduces device tensors only
        flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.float32, device=device)
        views, at = {}, 0
        for p in params:
            view = flat[at : at + p.numel()]
            at += p.numel()
            views[id(p)] = view.view(p.shape)
            if id(p) in self.slots:
                shard, sl, inner = self.slots[id(p)]
                value = (
                    shard
                    if key == "param"
                    else inner.state.get(shard, {}).get(key, torch.zeros_like(shard))
                )
                view[sl] = value.detach().float().view(-1)
            elif key == "param" and not p.requires_grad and dp_rank == 0:
                view.copy_(p.detach().float().view(-1))
        if dist.get_world_size(dp_group) > 1:
            dist.all_reduce(flat, group=dp_group)
        return views

    def _adam_step(self) -> int:
        for shard, _, inner in self.slots.values():
            if "step" in inner.state.get(shard, {}):
                return int(inner.state[shard]["step"])
        return 0

    def _tp_local(self) -> dict[str, dict[int, torch.Tensor]]:
        from megatron.core import parallel_state as ps

        dp_group = ps.get_data_parallel_group(with_context_parallel=True)
        dp_rank = ps.get_data_parallel_rank(with_context_parallel=True)
        return {k: self._full_local(k, dp_group, dp_rank) for k in ("param", *MOMENTS)}

    def _load(
        self, shard: Callable[[ParamMapping, str], torch.Tensor], adam_step: int | None
    ) -> None:
        """Copy ``shard(mapping, prefix)`` (this rank's TP shard; prefix ``""`` for weights,
        ``"<moment>/"`` for moments) into the model and the optimizer's DP ranges; moments only
        when ``adam_step`` is given."""
        with torch.no_grad():
            for chunk in self.chunks:
                for mapping, p in chunk_mappings(chunk, self.args):
                    w = shard(mapping, "").to(p.device).float()
                    _check_shape(mapping, w, p)
                    p.copy_(w.to(p.dtype))
                    if id(p) not in self.slots:
                        continue
                    main, sl, inner = self.slots[id(p)]
                    main.copy_(w.view(-1)[sl])
                    if adam_step is not None:
                        inner.state[main] = {
                            "step": torch.tensor(float(adam_step)),  # torch keeps it on the CPU
                            **{
                                k: shard(mapping, f"{k}/").to(p.device).float().view(-1)[sl].clone()
                                for k in MOMENTS
                            },
                        }


class FsdpBackend(_TensorParallelBackend):
    """torch FSDP2 with :class:`l3_core.parallel.fsdp.FsdpOptimizer`; see the module docstring."""

    def _tp_local(self) -> dict[str, dict[int, torch.Tensor]]:
        from l3_core.parallel.fsdp import reshard

        out: dict[str, dict[int, torch.Tensor]] = {k: {} for k in ("param", *MOMENTS)}
        for chunk in self.chunks:
            reshard(chunk)
            for _, p in chunk_mappings(chunk, self.args):
                state = self.optimizer.state.get(p, {})
                for key, values in out.items():
                    value = p.detach() if key == "param" else state.get(key, torch.zeros_like(p))
                    # FSDP2 holds DTensors sharded over DP: the whole TP-local tensor
                    full = value.full_tensor() if hasattr(value, "full_tensor") else value
                    values[id(p)] = full.float()
        return out

    def _adam_step(self) -> int:
        for state in self.optimizer.state.values():
            if "step" in state:
                return int(state["step"])
        return 0

    def _load(
        self, shard: Callable[[ParamMapping, str], torch.Tensor], adam_step: int | None
    ) -> None:
        from torch.distributed.tensor import DTensor, distribute_tensor

        def shard_of(full: torch.Tensor, p: DTensor) -> torch.Tensor:
            # every DP rank holds the same TP-local tensor: distributing it keeps each one's shard
            return distribute_tensor(
                full.to(p.to_local().device), p.device_mesh, p.placements
            ).to_local()

        from l3_core.parallel.fsdp import reshard

        with torch.no_grad():
            for chunk in self.chunks:
                reshard(chunk)
                for mapping, param in chunk_mappings(chunk, self.args):
                    p = cast("DTensor", param)  # FSDP2 holds every parameter as a DTensor
                    w = shard(mapping, "").float()
                    _check_shape(mapping, w, p)
                    p.to_local().copy_(shard_of(w, p).to(p.dtype))
                    if adam_step is None or not p.requires_grad:
                        continue
                    self.optimizer.state[p] = {
                        "step": torch.tensor(float(adam_step)),
                        **{
                            k: DTensor.from_local(
                                shard_of(shard(mapping, f"{k}/").float(), p),
                                p.device_mesh,
                                p.placements,
                                run_check=False,
                                shape=p.shape,
                                stride=p.stride(),
                            )
                            for k in MOMENTS
                        },
                    }


_BACKENDS: dict[str, Callable[..., CheckpointBackend]] = {
    "megatron": MegatronBackend,
    "fsdp": FsdpBackend,
}


def checkpoint_backend(
    name: str, chunks: list[torch.nn.Module], optimizer, args: ModelArgs
) -> CheckpointBackend:
    """The backend registered as ``name`` (``"megatron"`` or ``"fsdp"``) for this job."""
    if name not in _BACKENDS:
        raise CheckpointError(f"checkpoint backend {name!r} is unknown; known: {sorted(_BACKENDS)}")
    return _BACKENDS[name](chunks, optimizer, args)
