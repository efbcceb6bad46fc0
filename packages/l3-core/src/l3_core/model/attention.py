"""Grouped-query self-attention with RoPE, document masking and an optional KV cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.args import ModelArgs
from l3_core.model.rope import apply_rotary


@dataclass
class KVCache:
    """Keys and values of one layer: [batch, kv_heads, capacity, head_dim].

    The cache may be wider than the activations (the CPU kernels keep a bfloat16 model's cache
    in float32); values stored are the activations' exactly, and :meth:`update` returns them in
    the activations' dtype. ``k_rows``/``v_rows`` view the same memory as
    [batch * kv_heads, capacity, head_dim]."""

    k: torch.Tensor
    v: torch.Tensor
    k_rows: torch.Tensor = field(init=False, repr=False)
    v_rows: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.k_rows = self.k.flatten(0, 1)
        self.v_rows = self.v.flatten(0, 1)

    @classmethod
    def empty(
        cls, args: ModelArgs, batch: int, capacity: int, dtype: torch.dtype, device: torch.device
    ) -> KVCache:
        shape = (batch, args.kv_heads, capacity, args.head_dim)
        return cls(
            torch.zeros(shape, dtype=dtype, device=device),
            torch.zeros(shape, dtype=dtype, device=device),
        )

    def update(
        self, start: int, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        end = start + k.shape[2]
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end].to(k.dtype), self.v[:, :, :end].to(v.dtype)


class Attention(nn.Module):
    """wq, wk, wv, wo are separate ``nn.Linear`` modules under their checkpoint names."""

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads = args.n_heads
        self.n_kv_heads = args.kv_heads
        self.head_dim = args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)

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
        q, k, v = self.rotated_heads(x, cos, sin)
        if cache is not None:
            k, v = cache.update(cache_start, k, v)
        return self.wo(self.attend(q, k, v, mask).transpose(1, 2).reshape(b, s, -1))

    def rotated_heads(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [b, n_heads, s, d] and k, v [b, n_kv_heads, s, d] of ``x`` [b, s, dim], q and k
        rotated by the :class:`~l3_core.model.rope.RotaryTable` tables ``cos``, ``sin``."""
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, s, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, s, self.n_kv_heads, self.head_dim)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """softmax(q k^T / sqrt(d) + mask) v, [b, n_heads, s, d]; causal when ``mask`` is None."""
        return F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            is_causal=mask is None and q.shape[2] > 1,
            enable_gqa=self.n_kv_heads != self.n_heads,
        )
