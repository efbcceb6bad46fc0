"""The chunked head + cross-entropy of ``Transformer.loss`` against ``F.cross_entropy``.

It stays in the plain model: it is plain PyTorch GEMMs on any device, and what it saves is
memory (the batch's logits), not CPU time."""

import pytest
import torch
import torch.nn.functional as F

from l3_core import InputError, ModelArgs, Transformer
from l3_core.model.loss import linear_cross_entropy


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
