"""The Llama RMSNorm as a Megatron-core module.

Megatron's local spec wraps ``torch.nn.RMSNorm``, which refuses sequence parallelism; this
one computes exactly as the plain model's ``RMSNorm`` and marks its weight ``sequence_parallel`` so
Megatron all-reduces its gradient across the tensor-parallel group when activations are
split along the sequence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, config, hidden_size: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.config = config
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(hidden_size, dtype=config.params_dtype))
        # Megatron reads this flag off the parameter; torch's Parameter does not declare it
        # (and where lint runs without torch, there is nothing to ignore: hence unused-ignore).
        self.weight.sequence_parallel = bool(config.sequence_parallel)  # type: ignore[attr-defined, unused-ignore]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).to(x.dtype)
        return self.weight.to(x.dtype) * normed
