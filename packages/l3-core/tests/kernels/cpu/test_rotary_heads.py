"""The qkv -> rotated heads node against splitting and ``apply_rotary``; values and gradients."""

import pytest
import torch

from l3_core import ModelArgs
from l3_core.kernels.cpu.modules import CpuAttention
from l3_core.kernels.cpu.rotary_heads import rotary_heads
from l3_core.model.attention import Attention
from l3_core.model.rope import RotaryTable, apply_rotary


def _tables(args, b, s, seed=0):
    positions = torch.randint(0, 300, (b, s), generator=torch.Generator().manual_seed(seed))
    return RotaryTable(args).gather(positions, 300)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_rotary_heads_equal_split_and_apply_rotary(dtype):
    args = ModelArgs(dim=96, n_layers=1, n_heads=6, n_kv_heads=2, vocab_size=32, multiple_of=32)
    b, s, d = 2, 9, args.head_dim
    cos, sin = _tables(args, b, s)
    qkv = torch.randn(b, s, (6 + 2 * 2) * d, dtype=dtype)
    q, k, v = rotary_heads(qkv, cos, sin, 6, 2)
    rq, rk, rv = qkv.split([6 * d, 2 * d, 2 * d], dim=-1)
    ref_q = apply_rotary(rq.view(b, s, 6, d), cos, sin).transpose(1, 2)
    ref_k = apply_rotary(rk.view(b, s, 2, d), cos, sin).transpose(1, 2)
    ref_v = rv.view(b, s, 2, d).transpose(1, 2)
    # bf16: the same products, summed by one fused multiply-add instead of two rounded steps.
    tol = {"rtol": 1e-2, "atol": 1e-2} if dtype == torch.bfloat16 else {"rtol": 1e-6, "atol": 1e-6}
    torch.testing.assert_close(q, ref_q, **tol)
    torch.testing.assert_close(k, ref_k, **tol)
    assert torch.equal(v, ref_v)


def test_rotary_heads_gradient_passes_gradcheck():
    args = ModelArgs(dim=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, multiple_of=32)
    cos, sin = _tables(args, 2, 5, seed=3)
    qkv = torch.randn(2, 5, 8 * args.head_dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: rotary_heads(x, cos.double(), sin.double(), 4, 2), (qkv,)
    )


def test_module_heads_equal_the_plain_modules_heads_and_gradients_in_float64():
    args = ModelArgs(dim=96, n_layers=1, n_heads=6, n_kv_heads=2, vocab_size=32, multiple_of=32)
    attention = CpuAttention(args).double()
    cos, sin = _tables(args, 2, 7, seed=4)
    x = torch.randn(2, 7, 96, dtype=torch.float64, requires_grad=True)
    ours = attention.rotated_heads(x, cos, sin)
    ref = Attention.rotated_heads(attention, x, cos, sin)
    weights = [x, attention.wq.weight, attention.wk.weight, attention.wv.weight]
    grads = [torch.randn_like(t) for t in ref]
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(ours, weights, grads)
    want = torch.autograd.grad(ref, weights, grads)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
