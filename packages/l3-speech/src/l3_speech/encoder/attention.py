"""Bidirectional multi-head self-attention with optional rotary positions and a padding mask.

The fused ``wqkv`` projection has the layout of ``torch.nn.MultiheadAttention.in_proj_weight``
(q, k, v stacked on the output dimension), so torchaudio weights copy across unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model import apply_rotary, inverse_frequencies


class RotaryPositions(nn.Module):
    """cos and signed-sin tables (l3-core's rotate-half layout) for positions [0, length)."""

    def __init__(self, head_dim: int, theta: float) -> None:
        super().__init__()
        self.head_dim, self.theta = head_dim, theta

    def forward(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        inv = inverse_frequencies(self.head_dim, self.theta, None).to(device)
        angles = torch.outer(torch.arange(length, device=device, dtype=torch.float32), inv)
        cos = torch.cat([angles.cos(), angles.cos()], dim=-1)
        sin = torch.cat([-angles.sin(), angles.sin()], dim=-1)
        return cos.unsqueeze(0), sin.unsqueeze(0)


class SelfAttention(nn.Module):
    def __init__(
        self, dim: int, n_heads: int, rotary: bool, rope_theta: float, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, dim // n_heads
        self.wqkv = nn.Linear(dim, 3 * dim, bias=True)
        self.wo = nn.Linear(dim, dim, bias=True)
        self.rope = RotaryPositions(self.head_dim, rope_theta) if rotary else None
        self.dropout = dropout

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        """``x`` [b, t, dim]; ``key_padding`` [b, t] True where a frame is padding."""
        b, t, _ = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.n_heads, self.head_dim).unbind(2)
        if self.rope is not None:
            cos, sin = self.rope(t, x.device)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        mask = None if key_padding is None else ~key_padding[:, None, None, :]
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))
