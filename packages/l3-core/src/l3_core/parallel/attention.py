"""Core attention with the causal and document masks, and the paper's context parallelism.

Llama 3 (section 3.3.2) shards the sequence over the context-parallel (CP) group and, before
attention, all-gathers the keys and values (cheap with GQA: few KV heads), so each rank attends
with its local queries over the whole sequence under an arbitrary mask. The sequence is cut
into ``2 * cp`` chunks and rank ``r`` holds chunks ``r`` and ``2cp - 1 - r``, which balances the
causal work. The mask is built from global token indices and document ids, so a packed
sequence never attends across documents.

Megatron passes ``attention_mask`` through to core attention untouched; the trainer passes the
local document ids there (``None`` for one document per row). An objective whose sequences
share tokens in a way document ids cannot state (a reward model's prompt packed once before
its responses, each of which sees the prompt and itself only) passes a boolean mask
``[b, 1, s, s]`` instead (True = attend; it must hold the causal rule itself; no context
parallelism).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def cp_chunk_indices(seq_len: int, cp_size: int, cp_rank: int) -> torch.Tensor:
    """Global token indices held by ``cp_rank``: chunks ``r`` and ``2cp-1-r`` of ``2cp``."""
    if cp_size == 1:
        return torch.arange(seq_len)
    chunk = seq_len // (2 * cp_size)
    first = torch.arange(cp_rank * chunk, (cp_rank + 1) * chunk)
    second_start = (2 * cp_size - 1 - cp_rank) * chunk
    return torch.cat([first, torch.arange(second_start, second_start + chunk)])


class _AllGatherSeq(torch.autograd.Function):
    """All-gather along dim 0; the backward sums gradients and keeps this rank's slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, group) -> torch.Tensor:
        ctx.group = group
        world = dist.get_world_size(group)
        out = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(out, x.contiguous(), group=group)
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad, group=ctx.group)
        world = dist.get_world_size(ctx.group)
        rank = dist.get_rank(ctx.group)
        return grad.chunk(world, dim=0)[rank].contiguous(), None


def gather_sequence(x: torch.Tensor, group) -> torch.Tensor:
    """Differentiable all-gather of ``x`` along dim 0 across ``group`` (rank order)."""
    return _AllGatherSeq.apply(x, group)


class CPAttention(nn.Module):
    """Replaces Megatron's ``DotProductAttention`` in the layer spec."""

    def __init__(
        self,
        config,
        layer_number: int,
        attn_mask_type,
        attention_type: str,
        attention_dropout: float | None = None,
        softmax_scale: float | None = None,
        cp_comm_type: str | None = None,
        pg_collection=None,
    ) -> None:
        super().__init__()
        from megatron.core import parallel_state

        self.config = config
        self.softmax_scale = softmax_scale
        self.cp_size = config.context_parallel_size
        self.cp_group = parallel_state.get_context_parallel_group() if self.cp_size > 1 else None
        self.cp_rank = parallel_state.get_context_parallel_rank() if self.cp_size > 1 else 0

    def forward(
        self,
        query,
        key,
        value,
        attention_mask,
        attn_mask_type=None,
        attention_bias=None,
        packed_seq_params=None,
    ):
        # query [sq, b, np, hn]; key/value [sk, b, ng, hn]; attention_mask: doc ids [b, sq], a
        # boolean mask [b, 1, sq, sk] or None
        sq, b, n_heads, hn = query.shape
        dense = attention_mask is not None and attention_mask.dim() == 4
        if dense and self.cp_size > 1:
            raise ValueError(
                "a dense attention mask [b, 1, s, s] cannot be split over context-parallel "
                "ranks: pass document ids, or use context parallelism 1"
            )
        doc = attention_mask
        if self.cp_size > 1:
            key = gather_sequence(key, self.cp_group)
            value = gather_sequence(value, self.cp_group)
            if doc is not None:
                doc = gather_sequence(doc.transpose(0, 1).contiguous(), self.cp_group).transpose(
                    0, 1
                )
        rep = n_heads // key.shape[2]
        if rep > 1:
            key = key.repeat_interleave(rep, dim=2)
            value = value.repeat_interleave(rep, dim=2)
        q, k, v = (t.permute(1, 2, 0, 3) for t in (query, key, value))  # [b, h, s, hn]
        if self.cp_size == 1 and attention_mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.softmax_scale)
        elif dense:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attention_mask, scale=self.softmax_scale
            )
        else:
            mask = self._mask(sq, k.shape[2], attention_mask, doc, query.device)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.softmax_scale)
        return out.permute(2, 0, 1, 3).reshape(sq, b, n_heads * hn)

    def _mask(self, sq: int, sk: int, local_doc, full_doc, device) -> torch.Tensor:
        seq_len = sq * self.cp_size
        q_idx = cp_chunk_indices(seq_len, self.cp_size, self.cp_rank).to(device)
        k_idx = torch.cat(
            [cp_chunk_indices(seq_len, self.cp_size, r) for r in range(self.cp_size)]
        ).to(device)
        mask = (k_idx[None, :] <= q_idx[:, None])[None, None]  # [1, 1, sq, sk]
        if local_doc is not None:
            same = local_doc[:, :, None] == full_doc[:, None, :]  # [b, sq, sk]
            mask = mask & same[:, None]
        return mask
