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
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.kernels.cpu.norm import fused_rms_norm
from l3_core.kernels.cpu.packed_linear import Linear, packed_linear
from l3_core.kernels.cpu.stacked import stacked_weight
from l3_core.kernels.swap import plain_class
from l3_core.model.attention import Attention, KVCache
from l3_core.model.decoding import DecodeLayout
from l3_core.model.feed_forward import FeedForward
from l3_core.model.norm import RMSNorm
from l3_core.model.transformer import Transformer, TransformerBlock


def _norm(x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
    return fused_rms_norm(x, norm.weight, norm.eps)  # RMSNorm.forward without the module call


def _blocks(model: Transformer) -> list[TransformerBlock]:
    return cast("list[TransformerBlock]", model.layers)  # ModuleList is untyped


def _projections(layer: TransformerBlock) -> tuple[nn.Module, ...]:
    a, f = layer.attention, layer.feed_forward
    return (a.wq, a.wk, a.wv, a.wo, f.w1, f.w3, f.w2)


def supports_fast_decode(model: Transformer) -> bool:
    """Whether the lean step computes what the modules would: the model and its blocks are the
    plain classes (no subclass that overrides a step) and every projection is a plain
    ``nn.Linear`` (no adapters, quantised or wrapped layers, whose forward this step would
    bypass by reading ``.weight``)."""
    layers_plain = all(
        plain_class(layer) is TransformerBlock
        and plain_class(layer.attention) is Attention
        and plain_class(layer.feed_forward) is FeedForward
        for layer in _blocks(model)
    )
    modules = [m for layer in _blocks(model) for m in _projections(layer)]
    if model.output is not None:
        modules.append(model.output)
    return (
        plain_class(model) is Transformer
        and layers_plain
        and all(type(m) is nn.Linear and m.bias is None for m in modules)
    )


def projection_weights(model: Transformer) -> list[torch.Tensor] | None:
    """The matrices one decoding step multiplies by, in the order it uses them (wqkv, wo, w13,
    w2 per layer, then the head); None where the stacked copies would pass their budget."""
    weights = []
    for layer in _blocks(model):
        a, f = layer.attention, layer.feed_forward
        wqkv = stacked_weight(a, [a.wq.weight, a.wk.weight, a.wv.weight])
        w13 = stacked_weight(f, [f.w1.weight, f.w3.weight])
        if wqkv is None or w13 is None:
            return None
        weights += [wqkv, a.wo.weight, w13, f.w2.weight]
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
    def of(
        cls, model: Transformer, weights: list[torch.Tensor], linear: Linear = F.linear
    ) -> DecodePlan:
        """``weights``: :func:`projection_weights` of ``model``."""
        layers = []
        for i, layer in enumerate(_blocks(model)):
            wqkv, wo, w13, w2 = weights[4 * i : 4 * i + 4]
            layers.append((layer.attention_norm, wqkv, wo, layer.ffn_norm, w13, w2))
        a = model.args
        return cls(
            model.tok_embeddings,
            layers,
            model.norm,
            weights[-1],
            a.n_heads,
            a.kv_heads,
            a.head_dim,
            a.ffn_hidden_dim,
            linear,
        )


def decode_step(
    plan: DecodePlan,
    tokens: torch.Tensor,
    cos: torch.Tensor,
    signed_sin: torch.Tensor,
    caches: list[KVCache],
    start: int,
    key_bias: torch.Tensor | None,
) -> torch.Tensor:
    """Logits [b, vocab] for ``tokens`` [b] at cache slot ``start``.

    ``cos``, ``signed_sin``: [b, head_dim] rows of :class:`RotaryTable`'s tables in the model's
    dtype. ``key_bias``: None, or an additive [b, 1, 1, start + 1] mask (-inf on padding keys).
    """
    b = tokens.shape[0]
    h = plan.embedding(tokens)
    n_heads, n_kv, d, hidden, linear = (
        plan.n_heads,
        plan.n_kv_heads,
        plan.head_dim,
        plan.hidden_dim,
        plan.linear,
    )
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


@dataclass(frozen=True)
class LeanDecoder:
    """:func:`decode_step` as a generation's per-token step (a
    :data:`~l3_core.model.decoding.Decoder`), with its tables gathered once."""

    plan: DecodePlan
    caches: list[KVCache]
    start: int
    cos: torch.Tensor
    signed_sin: torch.Tensor
    key_bias: torch.Tensor | None

    @classmethod
    def of(
        cls, model: Transformer, caches: list[KVCache], layout: DecodeLayout
    ) -> LeanDecoder | None:
        """None where the stacked projections would pass their budget (decode by modules)."""
        weights = projection_weights(model)
        if weights is None:
            return None
        b = layout.positions.shape[0]
        dtype = model.tok_embeddings.weight.dtype
        cos, sin = model.rope.gather(layout.positions, layout.capacity)
        key_bias = None
        if layout.real_keys is not None:
            key_bias = torch.zeros(b, 1, 1, layout.capacity, device=cos.device).masked_fill_(
                ~layout.real_keys[:, None, None], float("-inf")
            )
        plan = DecodePlan.of(model, weights, packed_linear(model, weights, b))
        return cls(plan, caches, layout.start, cos.to(dtype), sin.to(dtype), key_bias)

    def __call__(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        slot = self.start + n
        bias = self.key_bias[..., : slot + 1] if self.key_bias is not None else None
        return decode_step(
            self.plan, tokens, self.cos[:, n], self.signed_sin[:, n], self.caches, slot, bias
        )
