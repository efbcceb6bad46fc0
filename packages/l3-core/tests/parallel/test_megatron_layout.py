"""Plain <-> Megatron layout: shards reassemble exactly for any TP size, and the fused QKV
and gated FC1 follow Megatron's documented layouts."""

from __future__ import annotations

import pytest
import torch

from l3_core.args import ModelArgs
from l3_core.checkpoint.megatron import mapping_for, to_full, to_local

ARGS = ModelArgs(dim=32, n_layers=2, n_heads=8, n_kv_heads=4, vocab_size=64, multiple_of=16)


def _tensors(kind):
    g = torch.Generator().manual_seed(0)
    h, hd = ARGS.dim, ARGS.head_dim
    shapes = {
        "vocab": [(64, h)],
        "row": [(h, 48)],
        "norm": [(h,)],
        "fc1": [(48, h), (48, h)],
        "qkv": [(ARGS.n_heads * hd, h), (ARGS.kv_heads * hd, h), (ARGS.kv_heads * hd, h)],
    }
    return [torch.randn(s, generator=g) for s in shapes[kind]]


@pytest.mark.parametrize("kind", ["vocab", "row", "norm", "fc1", "qkv"])
@pytest.mark.parametrize("tp", [1, 2, 4])
def test_shards_reassemble_exactly(kind, tp):
    full = _tensors(kind)
    shards = [to_local(kind, full, ARGS, r, tp) for r in range(tp)]
    back = to_full(kind, shards, ARGS)
    assert all(torch.equal(a, b) for a, b in zip(full, back))


def test_fused_qkv_groups_queries_with_their_kv_head():
    wq, wk, wv = _tensors("qkv")
    fused = to_local("qkv", [wq, wk, wv], ARGS, 0, 1)
    hd, per = ARGS.head_dim, ARGS.n_heads // ARGS.kv_heads
    group1 = fused[(per + 2) * hd : (per + 2) * hd * 2]  # [q heads 2,3 | k head 1 | v head 1]
    assert torch.equal(group1[: per * hd], wq[per * hd : 2 * per * hd])
    assert torch.equal(group1[per * hd : (per + 1) * hd], wk[hd : 2 * hd])
    assert torch.equal(group1[(per + 1) * hd :], wv[hd : 2 * hd])


def test_fc1_shard_holds_gate_then_up():
    w1, w3 = _tensors("fc1")
    shard = to_local("fc1", [w1, w3], ARGS, 1, 2)
    assert torch.equal(shard[:24], w1[24:]) and torch.equal(shard[24:], w3[24:])


def test_names_map_with_the_global_layer_index():
    m = mapping_for("module.decoder.layers.0.self_attention.linear_qkv.weight", 5, ARGS)
    assert m.plain_names == (
        "layers.5.attention.wq.weight",
        "layers.5.attention.wk.weight",
        "layers.5.attention.wv.weight",
    )
    tied = mapping_for("output_layer.weight", None, ARGS.replace(tie_embeddings=True))
    assert tied.plain_names == ("tok_embeddings.weight",)
