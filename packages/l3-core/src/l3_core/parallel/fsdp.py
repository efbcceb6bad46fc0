"""Fully sharded data parallelism: torch FSDP2 (``fully_shard``) over the Megatron GPTModel.

Each transformer layer and the embedding are their own FSDP unit, so parameters are gathered
just in time and resharded after use; FSDP averages gradients over the group (a plain sum is
a PREMUL_SUM that gloo lacks), so :func:`finalize_grads` multiplies by the group size over the
global token count, which makes the result the DDP path's sum over tokens / token count. Megatron's own ``TorchFullyShardedDataParallel`` wrapper builds a
CUDA-only device mesh and hands gradient scaling to Megatron's DDP machinery, so this module
applies FSDP2 itself. The optimizer is AdamW over the sharded (DTensor) parameters, grouped
like Megatron's (no weight decay on vectors), with global-norm clipping.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist


def shard_model(chunk: torch.nn.Module, group) -> torch.nn.Module:
    """Apply FSDP2 to ``chunk`` over the data-parallel ``group``; returns the same module."""
    from megatron.core.models.common.embeddings.language_model_embedding import (
        LanguageModelEmbedding,
    )
    from megatron.core.transformer.transformer_layer import TransformerLayer
    from torch.distributed import DeviceMesh
    from torch.distributed.fsdp import fully_shard

    mesh = DeviceMesh.from_group(group, "cuda" if torch.cuda.is_available() else "cpu")
    units = [
        m for m in chunk.modules() if isinstance(m, (TransformerLayer, LanguageModelEmbedding))
    ]
    for unit in units:
        fully_shard(unit, mesh=mesh)
    fully_shard(chunk, mesh=mesh)
    return chunk


def finalize_grads(
    model_list, num_tokens, pg_collection=None, force_all_reduce=False, *, group=None
) -> None:
    """Megatron's ``finalize_model_grads_func`` for FSDP: divide by the global token count."""
    if num_tokens is None:
        return
    total = num_tokens.clone().float()
    dist.all_reduce(total, group=group)
    scale = dist.get_world_size(group) / max(float(total), 1.0)
    for model in model_list:
        for p in model.parameters():
            if p.grad is not None:
                p.grad.mul_(scale)


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
    ) -> None:
        params = [p for p in model.parameters() if p.requires_grad]
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
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        self.optimizer.step()
        return True, float(norm), None


def no_sync():
    """Megatron's ``no_sync_func``: FSDP reduces in its own hooks, so there is nothing to hold."""
    return contextlib.nullcontext()
