"""Grouped-query attention of a padded batch of queries over keys read from the paged cache.

The query heads that share a key/value head are stacked into one GEMM (no repeated keys), the
additive mask enters through ``baddbmm``'s bias, and the keys of every sequence are one gather
of flat cache slots: three batched products per batch and layer, whatever the number of
requests. Batches are kv-head-major (row ``h * seqs + i``), the layout the cache gathers into.
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
    # [seqs, qlen, kv, g, d] -> [kv * seqs, g * qlen, d]: one GEMM row block per key head.
    qg = q.view(s, t, n_kv, g, d).permute(2, 0, 3, 1, 4).reshape(n_kv * s, g * t, d)
    k, v = cache.gather_slots(layer, batch.key_slots)
    # In float32 whatever the model's dtype, as l3-core's decoding step attends.
    scores = torch.baddbmm(batch.bias, qg.float(), k.float().transpose(1, 2), alpha=d**-0.5)
    out = torch.bmm(torch.softmax(scores, dim=-1), v.float())
    out = out.view(n_kv, s, g, t, d).permute(1, 3, 0, 2, 4).reshape(s * t, heads, d)
    out = out.to(q.dtype)
    return out[batch.dest] if batch.padded else out
