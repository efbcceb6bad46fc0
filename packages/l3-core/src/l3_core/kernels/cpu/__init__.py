"""The CPU kernels: the model's hot paths as fewer, larger tensor operations.

- ``blocked_attention``: causal attention as blocked GEMMs (training and prefill).
- ``rotary_heads``: the stacked qkv projection -> rotated q, k, v heads, one autograd node.
- ``swiglu``: SwiGLU on the stacked w1/w3 projection, one autograd node.
- ``norm``: float32 RMSNorm with its weight inside PyTorch's fused op.
- ``stacked``: wq/wk/wv and w1/w3 as one GEMM each (stacked copies of the plain parameters).
- ``decode``: the lean one-token decoding step (``DecodePlan``), a float32 KV cache for
  low-precision models; ``packed_linear``: oneDNN/MKL pre-packed decode weights.
"""

from __future__ import annotations

from torch import nn

from l3_core.kernels.cpu import packed_linear, stacked
from l3_core.kernels.cpu.modules import MODULES


def release(model: nn.Module) -> None:
    """Drop the stacked and packed weight copies kept for ``model`` (rebuilt when next used):
    after writes through ``.data``, which version counters do not see, or to free memory."""
    packed_linear.release(model)
    stacked.release(list(model.modules()))


__all__ = ["MODULES", "release"]
