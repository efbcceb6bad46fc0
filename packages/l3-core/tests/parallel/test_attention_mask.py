"""The trainer's core attention takes a dense boolean mask as well as document ids: the same
output for the mask document ids state, and, for a prompt packed once before its responses,
each response's output equal to attention over ``prompt + response`` alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from l3_core.parallel.attention import CPAttention

HEADS, KV, HN = 4, 2, 8


def _attention(cp: int = 1) -> CPAttention:
    att = CPAttention.__new__(CPAttention)  # no process groups needed with cp = 1
    torch.nn.Module.__init__(att)
    att.config, att.softmax_scale, att.cp_size, att.cp_rank = SimpleNamespace(), None, cp, 0
    att.cp_group = None
    return att


def _qkv(s: int, b: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(s, b, HEADS, HN, generator=g)
    k, v = (torch.randn(s, b, KV, HN, generator=g) for _ in range(2))
    return q, k, v


def test_dense_mask_of_the_documents_gives_the_document_ids_output():
    q, k, v = _qkv(10, b=2)
    doc = torch.tensor([[0] * 4 + [1] * 6, [0] * 7 + [1] * 3])
    i = torch.arange(10)
    dense = ((i[None, :] <= i[:, None]) & (doc[:, :, None] == doc[:, None, :]))[:, None]
    att = _attention()
    torch.testing.assert_close(att(q, k, v, dense), att(q, k, v, doc), rtol=0, atol=0)


def test_prompt_once_mask_equals_each_response_alone():
    p, r1, r2 = 5, 3, 4
    q, k, v = _qkv(p + r1 + r2)
    seg = torch.tensor([0] * p + [1] * r1 + [2] * r2)
    i = torch.arange(len(seg))
    allowed = (seg[None, :] == seg[:, None]) | (seg[None, :] == 0)
    mask = ((i[None, :] <= i[:, None]) & allowed)[None, None]
    att = _attention()
    packed = att(q, k, v, mask)
    for lo, hi in ((p, p + r1), (p + r1, p + r1 + r2)):
        idx = torch.cat([torch.arange(p), torch.arange(lo, hi)])
        alone = att(q[idx], k[idx], v[idx], None)  # causal over prompt + response
        torch.testing.assert_close(packed[lo:hi], alone[p:], rtol=0, atol=1e-6)


def test_dense_mask_with_context_parallelism_is_refused():
    q, k, v = _qkv(8)
    with pytest.raises(ValueError, match="context-parallel"):
        _attention(cp=2)(q, k, v, torch.ones(1, 1, 8, 8, dtype=torch.bool))
