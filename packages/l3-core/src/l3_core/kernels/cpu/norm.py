"""RMSNorm with its weight applied inside PyTorch's fused op, for float32."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_core.model.norm import rms_norm


def fused_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """:func:`l3_core.model.norm.rms_norm`; for float32 ``x`` and ``weight`` one fused op with
    the same products (the two-step form rounds nothing in float32)."""
    if x.dtype == torch.float32 and weight.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), weight, eps=eps)
    return rms_norm(x, weight, eps)
