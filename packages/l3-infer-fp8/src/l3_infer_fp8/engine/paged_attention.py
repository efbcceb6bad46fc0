"""Grouped-query attention of a padded batch of queries over keys read from the paged cache.

The query heads that share a key/value head are stacked into one GEMM (no repeated keys), the
additive mask enters through ``baddbmm``'s bias, and the keys of every sequence are one gather
of flat cache slots: three batched products per batch and layer, whatever the number of
requests.
"""

from __future__ import annotations

import torch

from l3_infer_fp8.engine.kv_cache import PagedKVCache
from l3_infer_fp8.engine.step_batch import AttentionBatch


def attend(
    cache: PagedKVCache, layer: int, q: torch.Tensor, batch: AttentionBatch, n_kv: int
) -> torch.Tensor:
    """Attention outputs [n, heads, head_dim] of ``batch``'s queries ``q`` [n, heads, head_dim]."""
    heads, d = q.shape[1:]
    g, s, t = heads // n_kv, batch.seqs, batch.qlen
    if batch.padded:
        padded = q.new_zeros(s * t, heads, d)
        padded[batch.dest] = q
        q = padded
    # [seqs, qlen, kv, g, d] -> [seqs * kv, g * qlen, d]: one GEMM row block per key head.
    qg = q.view(s, t, n_kv, g, d).permute(0, 2, 3, 1, 4).reshape(s * n_kv, g * t, d)
    k, v = cache.gather_slots(layer, batch.key_slots)  # [seqs, klen, kv, d]
    klen = k.shape[1]
    # In float32 whatever the model's dtype, as l3-core's decoding step attends.
    k = k.permute(0, 2, 3, 1).reshape(s * n_kv, d, klen).float()
    v = v.permute(0, 2, 1, 3).reshape(s * n_kv, klen, d).float()
    probs = torch.softmax(torch.baddbmm(batch.bias, qg.float(), k, alpha=d**-0.5), dim=-1)
    out = torch.bmm(probs, v).view(s, n_kv, g, t, d).permute(0, 3, 1, 2, 4)
    out = out.reshape(s * t, heads, d).to(q.dtype)
    return out[batch.dest] if batch.padded else out
