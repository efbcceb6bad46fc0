"""One decoding step (one new token per row) with as few tensor operations as possible.

At batch 1 a small model's decoding step is a chain of matrix-vector products separated by
elementwise work on vectors of a few hundred elements, where each PyTorch call costs more than
its arithmetic. This step computes what :meth:`Transformer.forward_hidden` computes for one
query with a cache (the same RMSNorm, rotation and SwiGLU expressions in the same dtypes) but
on 2-D activations, writing rotated keys and values straight into the cache and attending with
two small float32 batched products instead of a general attention kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model.attention import KVCache
from l3_core.model.norm import RMSNorm, rms_norm
from l3_core.model.packed_linear import Linear
from l3_core.model.transformer import Transformer


def _norm(x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
    return rms_norm(x, norm.weight, norm.eps)  # RMSNorm.forward without the module call


def _layer_projections(layer: nn.Module) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
    """wqkv, wo, w13, w2: the order a decoding step multiplies by them."""
    return (layer.attention.wqkv, layer.attention.wo, layer.feed_forward.w13, layer.feed_forward.w2)


def supports_fast_decode(model: Transformer) -> bool:
    """Whether every projection is a plain ``nn.Linear`` (no adapters, quantised or wrapped
    layers, whose forward this step would bypass by reading ``.weight``)."""
    modules = [m for layer in model.layers for m in _layer_projections(layer)]
    if model.output is not None:
        modules.append(model.output)
    return all(type(m) is nn.Linear for m in modules)


def projection_weights(model: Transformer) -> list[torch.Tensor]:
    """The matrices one decoding step multiplies by, in the order it uses them."""
    weights = [m.weight for layer in model.layers for m in _layer_projections(layer)]
    return [*weights, model.head_weight]


@dataclass(frozen=True)
class DecodePlan:
    """What one decoding step reads, gathered once per generation (no module lookups per token)."""

    embedding: nn.Embedding
    layers: list[tuple[RMSNorm, torch.Tensor, torch.Tensor, RMSNorm, torch.Tensor, torch.Tensor]]
    norm: RMSNorm
    head: torch.Tensor
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    linear: Linear

    @classmethod
    def of(cls, model: Transformer, linear: Linear = F.linear) -> DecodePlan:
        layers = []
        for layer in model.layers:
            wqkv, wo, w13, w2 = (m.weight for m in _layer_projections(layer))
            layers.append((layer.attention_norm, wqkv, wo, layer.ffn_norm, w13, w2))
        a = model.args
        return cls(model.tok_embeddings, layers, model.norm, model.head_weight, a.n_heads,
                   a.kv_heads, a.head_dim, a.ffn_hidden_dim, linear)


def decode_step(plan: DecodePlan, tokens: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor,
                caches: list[KVCache], start: int, key_bias: torch.Tensor | None) -> torch.Tensor:
    """Logits [b, vocab] for ``tokens`` [b] at cache slot ``start``.

    ``cos``, ``signed_sin``: [b, head_dim] rows of :class:`RotaryTable`'s tables in the model's
    dtype. ``key_bias``: None, or an additive [b, 1, 1, start + 1] mask (-inf on padding keys).
    """
    b = tokens.shape[0]
    h = plan.embedding(tokens)
    n_heads, n_kv, d, hidden, linear = plan.n_heads, plan.n_kv_heads, plan.head_dim, plan.hidden_dim, plan.linear
    rotated = n_heads + n_kv
    group = n_heads // n_kv
    end = start + 1
    c = cos[:, None]
    s = signed_sin[:, None]
    # scores = scale * q k^T + bias in one baddbmm; beta 0 ignores the placeholder bias.
    if key_bias is None:
        bias, beta = torch.zeros(1, 1, 1, device=h.device), 0.0
    else:
        bias, beta = key_bias.expand(b, n_kv, 1, end).reshape(b * n_kv, 1, end), 1.0
    wide_cache = caches[0].k.dtype == torch.float32
    for (attn_norm, wqkv, wo, ffn_norm, w13, w2), cache in zip(plan.layers, caches):
        qkv = linear(_norm(h, attn_norm), wqkv).view(b, rotated + n_kv, d)
        x = qkv[:, :rotated]
        # rotate-half: the same products and sums as rotary_heads.rotate
        qk = torch.addcmul(x * c, x.roll(d // 2, dims=-1), s)
        cache.k.select(2, start).copy_(qk[:, n_heads:])
        cache.v.select(2, start).copy_(qkv[:, rotated:])
        q = qk[:, :n_heads].reshape(b * n_kv, group, d).float()
        keys, values = cache.k_rows[:, :end], cache.v_rows[:, :end]
        if not wide_cache:
            keys, values = keys.float(), values.float()
        scores = torch.baddbmm(bias, q, keys.transpose(1, 2), beta=beta, alpha=d**-0.5)
        probs = torch.softmax(scores, dim=-1)
        out = torch.bmm(probs, values).view(b, n_heads * d).to(qkv.dtype)
        h = h + linear(out, wo)
        gate_up = linear(_norm(h, ffn_norm), w13)
        h = h + linear(F.silu(gate_up[:, :hidden]).mul_(gate_up[:, hidden:]), w2)
    return linear(_norm(h, plan.norm), plan.head)
