"""One decoding step (one new token per row) with as few tensor operations as possible.

At batch 1 a small model's decoding step is a chain of matrix-vector products separated by
elementwise work on vectors of a few hundred elements, where each PyTorch call costs more than
its arithmetic. This step computes what :meth:`Transformer.forward_hidden` computes for one
query with a cache (the same RMSNorm, rotation and SwiGLU expressions in the same dtypes) but
on 2-D activations, writing rotated keys and values straight into the cache and attending with
two small float32 batched products instead of a general attention kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model.attention import KVCache
from l3_core.model.norm import RMSNorm
from l3_core.model.packed_linear import Linear
from l3_core.model.rotary_heads import rotate
from l3_core.model.transformer import Transformer


def _norm(x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
    """:meth:`RMSNorm.forward` without the module call."""
    if x.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), norm.weight, eps=norm.eps)
    return norm.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=norm.eps).to(x.dtype)


def supports_fast_decode(model: Transformer) -> bool:
    """Whether every projection is a plain ``nn.Linear`` (no adapters, quantised or wrapped
    layers, whose forward this step would bypass by reading ``.weight``)."""
    modules = [m for layer in model.layers for m in (layer.attention.wqkv, layer.attention.wo,
                                                     layer.feed_forward.w13, layer.feed_forward.w2)]
    if model.output is not None:
        modules.append(model.output)
    return all(type(m) is nn.Linear for m in modules)


def projection_weights(model: Transformer) -> list[torch.Tensor]:
    """The matrices one decoding step multiplies by, in the order it uses them."""
    weights = []
    for layer in model.layers:
        weights += [layer.attention.wqkv.weight, layer.attention.wo.weight,
                    layer.feed_forward.w13.weight, layer.feed_forward.w2.weight]
    weights.append(model.head_weight)
    return weights


def decode_step(model: Transformer, tokens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                caches: list[KVCache], start: int, key_bias: torch.Tensor | None,
                linear: Linear = F.linear) -> torch.Tensor:
    """Logits [b, vocab] for ``tokens`` [b] at cache slot ``start``.

    ``cos``, ``sin``: [b, head_dim // 2] (the first half of the cos table, the second half of the
    signed-sin table, in the model's dtype). ``key_bias``: None, or an additive [b, 1, 1, start + 1]
    mask (-inf on padding keys). ``linear``: the matrix product, e.g. from :func:`packed_linear`.
    """
    args = model.args
    b = tokens.shape[0]
    h = model.tok_embeddings(tokens)
    n_heads, n_kv, d = args.n_heads, args.kv_heads, args.head_dim
    group = n_heads // n_kv
    end = start + 1
    c = cos[:, None]
    s = sin[:, None]
    # scores = scale * q k^T + bias in one baddbmm; beta 0 ignores the placeholder bias.
    if key_bias is None:
        bias, beta = torch.zeros(1, 1, 1, device=h.device), 0.0
    else:
        bias, beta = key_bias.expand(b, n_kv, 1, end).reshape(b * n_kv, 1, end), 1.0
    for layer, cache in zip(model.layers, caches):
        attn = layer.attention
        qkv = linear(_norm(h, layer.attention_norm), attn.wqkv.weight).view(b, n_heads + 2 * n_kv, d)
        qk = torch.empty(b, n_heads + n_kv, d, dtype=qkv.dtype, device=qkv.device)
        rotate(qk, qkv[:, : n_heads + n_kv], c, s, 1.0)
        cache.k.select(2, start).copy_(qk[:, n_heads:])
        cache.v.select(2, start).copy_(qkv[:, n_heads + n_kv:])
        q = qk[:, :n_heads].reshape(b * n_kv, group, d).float()
        keys = cache.k[:, :, :end].reshape(b * n_kv, end, d).float()  # no copy from a float32 cache
        values = cache.v[:, :, :end].reshape(b * n_kv, end, d).float()
        scores = torch.baddbmm(bias, q, keys.transpose(1, 2), beta=beta, alpha=d**-0.5)
        probs = torch.softmax(scores, dim=-1)
        out = torch.bmm(probs, values).view(b, n_heads * d).to(qkv.dtype)
        h = h + linear(out, attn.wo.weight)
        ffn = layer.feed_forward
        gate_up = linear(_norm(h, layer.ffn_norm), ffn.w13.weight)
        hidden = F.silu(gate_up[:, : ffn.hidden_dim]).mul_(gate_up[:, ffn.hidden_dim:])
        h = h + linear(hidden, ffn.w2.weight)
    return linear(_norm(h, model.norm), model.head_weight)
