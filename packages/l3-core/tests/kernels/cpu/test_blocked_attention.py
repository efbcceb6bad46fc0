"""Blocked causal attention against SDPA (values and gradients) and the module that uses it."""

import pytest
import torch
import torch.nn.functional as F

from l3_core import ModelArgs
from l3_core.kernels.cpu import blocked_attention
from l3_core.kernels.cpu.modules import CpuAttention
from l3_core.model.attention import Attention


def _qkv(b, h, kv, s, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(b, n, s, d, generator=g) * 2).to(dtype).requires_grad_() for n in (h, kv, kv)
    ]


@pytest.mark.parametrize("heads", [(6, 2), (4, 4), (8, 1)])
@pytest.mark.parametrize("seq", [1, 7, 64, 130])
def test_blocked_attention_equals_sdpa_in_float64(heads, seq):
    h, kv = heads
    q, k, v = _qkv(2, h, kv, seq, 16, torch.float64)
    grad = torch.randn(2, h, seq, 16, dtype=torch.float64)
    ours = blocked_attention.causal_attention(q, k, v)
    ours.backward(grad)
    ours_grads = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=kv != h)
    ref.backward(grad)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(ours_grads, (q.grad, k.grad, v.grad)):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_blocked_attention_passes_gradcheck():
    q, k, v = _qkv(1, 4, 2, 70, 8, torch.float64, seed=1)
    assert torch.autograd.gradcheck(blocked_attention.causal_attention, (q, k, v))


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 2e-5), (torch.bfloat16, 5e-2)])
def test_blocked_attention_error_is_that_of_sdpa_in_low_precision(dtype, tol):
    q, k, v = _qkv(2, 6, 2, 200, 64, torch.float64, seed=2)
    exact = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    low = [t.detach().to(dtype) for t in (q, k, v)]
    ours = blocked_attention.causal_attention(*low).double()
    sdpa = F.scaled_dot_product_attention(*low, is_causal=True, enable_gqa=True).double()
    scale = exact.abs().max()
    assert (ours - exact).abs().max() / scale < tol
    assert (ours - exact).abs().max() < 3 * (sdpa - exact).abs().max() + 1e-7


def test_blocked_attention_leaves_long_training_sequences_to_sdpa():
    short = torch.empty(4, 6, 512, 64, dtype=torch.bfloat16)
    long = torch.empty(4, 32, 8192, 64, dtype=torch.bfloat16)
    assert blocked_attention.fits(short, needs_grad=True)
    assert not blocked_attention.fits(long, needs_grad=True)
    assert blocked_attention.fits(long, needs_grad=False)  # nothing is kept without autograd
    assert not blocked_attention.fits(torch.empty(1, 1, 8, 8, device="meta"), needs_grad=False)


def test_module_attends_by_blocks_only_over_its_own_keys(monkeypatch):
    args = ModelArgs(dim=32, n_layers=1, n_heads=4, n_kv_heads=2, vocab_size=32, multiple_of=32)
    attention = CpuAttention(args)
    calls = []
    real = blocked_attention.causal_attention
    monkeypatch.setattr(
        blocked_attention, "causal_attention", lambda *a: calls.append(1) or real(*a)
    )
    q, k, v = _qkv(1, 4, 2, 9, 8, torch.float64)
    ref = Attention.attend(attention, q, k, v, None)
    torch.testing.assert_close(attention.attend(q, k, v, None), ref, rtol=1e-12, atol=1e-12)
    assert calls == [1]
    # A query after cached keys, and masked attention, go to SDPA.
    attention.attend(q[:, :, -1:], k, v, None)
    mask = torch.ones(1, 1, 9, 9, dtype=torch.bool).tril()
    attention.attend(q, k, v, mask)
    assert calls == [1]
