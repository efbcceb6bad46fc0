"""The model's hand-written autograd nodes against plain PyTorch references: blocked causal
attention against SDPA, rotary heads against ``apply_rotary``; values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from l3_core import ModelArgs
from l3_core.model import blocked_attention
from l3_core.model.loss import linear_cross_entropy
from l3_core.model.rope import RotaryTable, apply_rotary
from l3_core.model.rotary_heads import rotary_heads


def _qkv(b, h, kv, s, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(b, n, s, d, generator=g) * 2).to(dtype).requires_grad_()
            for n in (h, kv, kv)]


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
        lambda x: rotary_heads(x, cos.double(), sin.double(), 4, 2), (qkv,))


def _loss_inputs(n, vocab, dim, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, dim, generator=g, dtype=dtype).requires_grad_()
    weight = (torch.randn(vocab, dim, generator=g, dtype=dtype) * 0.3).requires_grad_()
    targets = torch.randint(0, vocab, (n,), generator=g)
    return hidden, weight, targets


@pytest.mark.parametrize("n,vocab", [(7, 11), (300, 50_000)])  # one chunk; several chunks
def test_linear_cross_entropy_equals_cross_entropy_on_logits(n, vocab):
    hidden, weight, targets = _loss_inputs(n, vocab, 16, torch.float64)
    targets[::5] = -100
    ours = linear_cross_entropy(hidden, weight, targets)
    ours.backward()
    grads = hidden.grad.clone(), weight.grad.clone()
    hidden.grad = weight.grad = None
    ref = F.cross_entropy(hidden @ weight.t(), targets, ignore_index=-100)
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads[0], hidden.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[1], weight.grad, rtol=1e-10, atol=1e-12)


def test_linear_cross_entropy_under_autocast_matches_float_loss_on_autocast_logits():
    hidden, weight, targets = _loss_inputs(64, 1000, 32, torch.float32, seed=1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = linear_cross_entropy(hidden, weight, targets)
        ours.backward()
        grads = hidden.grad.clone(), weight.grad.clone()
        hidden.grad = weight.grad = None
        ref = F.cross_entropy(F.linear(hidden, weight).float(), targets)
        ref.backward()
    assert weight.grad.dtype == torch.float32 and grads[1].dtype == torch.float32
    torch.testing.assert_close(ours, ref, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(grads[0], hidden.grad, rtol=2e-2, atol=2e-4)
    torch.testing.assert_close(grads[1], weight.grad, rtol=2e-2, atol=2e-4)


def test_model_loss_equals_cross_entropy_of_its_logits_and_checks_targets():
    from l3_core import InputError, Transformer

    args = ModelArgs.from_preset("llama3-tiny")
    model = Transformer.build(args, seed=0)
    tokens = torch.randint(0, args.vocab_size, (2, 33))
    targets = torch.cat([tokens[:, 1:], torch.full((2, 1), -100)], dim=1)
    ours = model.loss(tokens, targets)
    ours.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    ref = F.cross_entropy(model(tokens).flatten(0, 1), targets.flatten())
    ref.backward()
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)
    with pytest.raises(InputError, match="target id 512 outside the vocabulary"):
        model.loss(tokens, torch.full_like(tokens, args.vocab_size))
    with pytest.raises(InputError, match="targets shape"):
        model.loss(tokens, targets[:, :5])


def test_swiglu_equals_its_expression_and_passes_gradcheck():
    from l3_core.model.feed_forward import swiglu

    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    gate, up = x.chunk(2, dim=-1)
    assert torch.equal(swiglu(x), F.silu(gate) * up)
    assert torch.autograd.gradcheck(swiglu, (x,))
