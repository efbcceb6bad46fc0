"""Grouped-query self-attention with RoPE, document masking and an optional KV cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.args import ModelArgs
from l3_core.model import blocked_attention
from l3_core.model.fused import register_fused_weight
from l3_core.model.rotary_heads import rotary_heads


@dataclass
class KVCache:
    """Keys and values of one layer: [batch, kv_heads, capacity, head_dim].

    The cache may be wider than the activations (float32 for a bfloat16 model on a CPU, where
    converting cached keys on every decoding step costs more than storing them wide); values
    stored are the activations' exactly, and :meth:`update` returns them in the activations'
    dtype. ``k_rows``/``v_rows`` view the same memory as [batch * kv_heads, capacity, head_dim]."""

    k: torch.Tensor
    v: torch.Tensor
    k_rows: torch.Tensor = field(init=False, repr=False)
    v_rows: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.k_rows = self.k.flatten(0, 1)
        self.v_rows = self.v.flatten(0, 1)

    @classmethod
    def empty(cls, args: ModelArgs, batch: int, capacity: int, dtype: torch.dtype,
              device: torch.device) -> KVCache:
        shape = (batch, args.kv_heads, capacity, args.head_dim)
        return cls(torch.zeros(shape, dtype=dtype, device=device),
                   torch.zeros(shape, dtype=dtype, device=device))

    def update(self, start: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end].to(k.dtype), self.v[:, :, :end].to(v.dtype)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.kv_heads
        self.head_dim = args.head_dim
        self.sizes = (args.n_heads * args.head_dim, args.kv_heads * args.head_dim,
                      args.kv_heads * args.head_dim)
        # wq, wk, wv stacked: one GEMM; checkpoints still name them separately.
        self.wqkv = nn.Linear(args.dim, sum(self.sizes), bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)
        register_fused_weight(self, "wqkv", ("wq", "wk", "wv"), self.sizes)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None = None,
        cache_start: int = 0,
    ) -> torch.Tensor:
        """``mask``: a boolean [b, 1, q, k] (True = attend), or None for causal attention
        (a single query with a cache attends to every cached key)."""
        b, s, _ = x.shape
        q, k, v = rotary_heads(self.wqkv(x), cos, sin, self.n_heads, self.n_kv_heads)
        if cache is not None:
            k, v = cache.update(cache_start, k, v)
        if mask is None and cache is None and s > 1 and blocked_attention.fits(q, torch.is_grad_enabled()):
            out = blocked_attention.causal_attention(q, k, v)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v,
                attn_mask=mask,
                is_causal=mask is None and s > 1,
                enable_gqa=self.n_kv_heads != self.n_heads,
            )
        return self.wo(out.transpose(1, 2).reshape(b, s, -1))
