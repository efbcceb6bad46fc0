"""Fully sharded data parallelism: torch FSDP2 (``fully_shard``) over the Megatron GPTModel.

Each transformer layer and the embedding are their own FSDP unit, so parameters are gathered
just in time and resharded after use; FSDP averages gradients over the group (a plain sum is
a PREMUL_SUM that gloo lacks), so :func:`finalize_grads` multiplies by the group size over the
global token count, which makes the result the DDP path's sum over tokens / token count. Megatron's own ``TorchFullyShardedDataParallel`` wrapper builds a
CUDA-only device mesh and hands gradient scaling to Megatron's DDP machinery, so this module
applies FSDP2 itself. The optimizer is AdamW over the sharded (DTensor) parameters, grouped
like Megatron's (no weight decay on vectors), with global-norm clipping.

Beside tensor parallelism, FSDP shards each TP rank's local slice over its data-parallel group
(a ``dp`` mesh per TP rank, the TP dimension kept by Megatron's own layers), and the two things
Megatron's DDP would add are done here: gradients of the weights that sequence parallelism
replicates across TP ranks (the norms) are summed over the TP group, and the gradient norm
counts each replicated weight once.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class TensorParallelRoles:
    """Names of the parameters Megatron marks (FSDP2's sharded parameters lose the marks):
    those sharded by TP, and those sequence parallelism replicates with partial gradients."""

    sharded: frozenset[str]
    sequence_parallel: frozenset[str]

    @staticmethod
    def of(chunk: torch.nn.Module) -> TensorParallelRoles:
        named = list(chunk.named_parameters())
        return TensorParallelRoles(
            frozenset(n for n, p in named if getattr(p, "tensor_model_parallel", False)),
            frozenset(n for n, p in named if getattr(p, "sequence_parallel", False)),
        )


def shard_model(chunk: torch.nn.Module, group, bf16: bool = False) -> torch.nn.Module:
    """Apply FSDP2 to ``chunk`` over the data-parallel ``group``; returns the same module
    (read its :class:`TensorParallelRoles` first). With ``bf16``, the fp32 parameters stay the
    master weights: each unit computes with bf16 copies, and gradients are reduced and kept in
    fp32."""
    from megatron.core.models.common.embeddings.language_model_embedding import (
        LanguageModelEmbedding,
    )
    from megatron.core.transformer.transformer_layer import TransformerLayer
    from torch.distributed import DeviceMesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = DeviceMesh.from_group(group, "cuda" if torch.cuda.is_available() else "cpu")
    units = [
        m for m in chunk.modules() if isinstance(m, (TransformerLayer, LanguageModelEmbedding))
    ]
    policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32
    )
    for unit in units:
        fully_shard(unit, mesh=mesh, mp_policy=policy)
    fully_shard(chunk, mesh=mesh, mp_policy=policy)
    return chunk


def reshard(chunk: torch.nn.Module) -> None:
    """Put back the sharded parameters (the ones the optimizer holds): a forward pass without
    backward (evaluation) leaves the root unit's parameters gathered."""
    from torch.distributed.fsdp import FSDPModule

    for m in chunk.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


def finalize_grads(
    model_list,
    num_tokens,
    pg_collection=None,
    force_all_reduce=False,
    *,
    group=None,
    roles: TensorParallelRoles | None = None,
    tp_group=None,
) -> None:
    """Megatron's ``finalize_model_grads_func`` for FSDP: sum the sequence-parallel weights'
    gradients over ``tp_group`` and divide by the global token count."""
    if roles is not None and tp_group is not None and dist.get_world_size(tp_group) > 1:
        for model in model_list:
            for name, p in model.named_parameters():
                if p.grad is not None and name in roles.sequence_parallel:
                    dist.all_reduce(_local(p.grad), group=tp_group)
    if num_tokens is None:
        return
    total = num_tokens.clone().float()
    dist.all_reduce(total, group=group)
    scale = dist.get_world_size(group) / max(float(total), 1.0)
    for model in model_list:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


class FsdpOptimizer:
    """AdamW + clipping with the slice of Megatron's optimizer API the trainer uses."""

    def __init__(
        self,
        model: torch.nn.Module,
        lr: float,
        weight_decay: float,
        betas,
        eps: float,
        clip_grad: float,
        roles: TensorParallelRoles | None = None,
        tp_rank: int = 0,
    ) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        params = [p for _, p in named]
        # a weight TP replicates counts once in the norm: on TP rank 0
        sharded = roles.sharded if roles is not None else frozenset()
        self.counted = [p for n, p in named if tp_rank == 0 or n in sharded]
        decay = [p for p in params if p.dim() > 1]
        no_decay = [p for p in params if p.dim() <= 1]
        self.params = params
        self.clip_grad = clip_grad
        self.optimizer = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": weight_decay, "wd_mult": 1.0},
                {"params": no_decay, "weight_decay": 0.0, "wd_mult": 0.0},
            ],
            lr=lr,
            betas=betas,
            eps=eps,
        )

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self):
        norm = self.grad_norm()
        if self.clip_grad > 0:
            # torch's clip_grad_norm_ rule, on a norm taken over every shard of the job
            coef = min(self.clip_grad / (norm + 1e-6), 1.0)
            for p in self.params:
                if p.grad is not None:
                    p.grad.mul_(coef)
        self.optimizer.step()
        return True, norm, None

    def grad_norm(self) -> float:
        """The global gradient norm: local shards' squares summed over every rank."""
        grads = [_local(p.grad) for p in self.counted if p.grad is not None]
        device = grads[0].device if grads else torch.device("cpu")
        total = torch.zeros((), dtype=torch.float64, device=device)
        for g in grads:
            total += g.double().pow(2).sum()
        if dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(total)
        return float(total.sqrt())


def no_sync():
    """Megatron's ``no_sync_func``: FSDP reduces in its own hooks, so there is nothing to hold."""
    return contextlib.nullcontext()
