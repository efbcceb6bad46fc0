"""The SwiGLU feed-forward block: w2(silu(w1 x) * w3 x)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model.fused import register_fused_weight


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        # w1 (gate) and w3 (up) stacked: one GEMM; checkpoints still name them separately.
        self.w13 = nn.Linear(dim, 2 * hidden_dim, bias=False)
        self.w2 = nn.Linear(hidden_dim, dim, bias=False)  # down
        register_fused_weight(self, "w13", ("w1", "w3"), (hidden_dim, hidden_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)
        return self.w2(F.silu(gate) * up)
