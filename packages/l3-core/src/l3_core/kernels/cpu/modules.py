"""The model's modules with the CPU kernels: subclasses that override how a module computes,
never what it holds (the same parameters, buffers and state-dict names as the plain module).

Projections that are not plain ``nn.Linear`` (adapters, quantised or wrapped layers) are
called as modules: their outputs feed the same rotary-heads and SwiGLU nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.kernels.cpu import blocked_attention
from l3_core.kernels.cpu.decode import LeanDecoder, supports_fast_decode
from l3_core.kernels.cpu.norm import fused_rms_norm
from l3_core.kernels.cpu.rotary_heads import rotary_heads
from l3_core.kernels.cpu.stacked import stacked_weight
from l3_core.kernels.cpu.swiglu import swiglu
from l3_core.model.attention import Attention, KVCache
from l3_core.model.decoding import DecodeLayout, Decoder
from l3_core.model.feed_forward import FeedForward
from l3_core.model.norm import RMSNorm
from l3_core.model.transformer import Transformer


def stacked_projection(
    owner: nn.Module, x: torch.Tensor, linears: Sequence[nn.Module]
) -> torch.Tensor:
    """The outputs of ``linears`` on ``x`` side by side: one GEMM by their stacked weights where
    all are plain ``nn.Linear`` without bias (within the stacking budget), else each module."""
    plain = [m for m in linears if type(m) is nn.Linear]
    if len(plain) == len(linears) and all(m.bias is None for m in plain):
        weight = stacked_weight(owner, [m.weight for m in plain])
        if weight is not None:
            return F.linear(x, weight)
    return torch.cat([m(x) for m in linears], dim=-1)


class CpuRMSNorm(RMSNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_rms_norm(x, self.weight, self.eps)


class CpuAttention(Attention):
    def rotated_heads(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        qkv = stacked_projection(self, x, (self.wq, self.wk, self.wv))
        return rotary_heads(qkv, cos, sin, self.n_heads, self.n_kv_heads)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        # Blocked attention is causal attention of a sequence over its own keys only.
        own_keys = q.shape[2] == k.shape[2] > 1
        if mask is None and own_keys and blocked_attention.fits(q, torch.is_grad_enabled()):
            return blocked_attention.causal_attention(q, k, v)
        return super().attend(q, k, v, mask)


class CpuFeedForward(FeedForward):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(swiglu(stacked_projection(self, x, (self.w1, self.w3))))


class CpuTransformer(Transformer):
    def kv_caches(self, batch: int, capacity: int) -> list[KVCache]:
        # The lean step attends in float32; on a CPU a float32 cache saves converting it per step.
        weight = self.tok_embeddings.weight
        low = weight.dtype in (torch.bfloat16, torch.float16)
        if not (low and weight.device.type == "cpu" and supports_fast_decode(self)):
            return super().kv_caches(batch, capacity)
        return [
            KVCache.empty(self.args, batch, capacity, torch.float32, weight.device)
            for _ in range(self.args.n_layers)
        ]

    def decoder(self, caches: list[KVCache], layout: DecodeLayout) -> Decoder:
        lean = LeanDecoder.of(self, caches, layout) if supports_fast_decode(self) else None
        return lean if lean is not None else super().decoder(caches, layout)


MODULES: dict[type[nn.Module], type[nn.Module]] = {
    Transformer: CpuTransformer,
    Attention: CpuAttention,
    FeedForward: CpuFeedForward,
    RMSNorm: CpuRMSNorm,
}
"""Plain module class -> its kernel subclass."""
