"""Why Megatron's fused cross-entropy changes the output layer's gradient in fp32, and why it is
exact in bf16: its backward rounds the logits' gradient to bfloat16 whatever the logits' dtype
(``grad_input.to(torch.bfloat16)`` in ``megatron/core/fusions/fused_cross_entropy.py``).

In fp32 that rounding is the whole difference (up to 2^-9 relative, about 1e-3 on average):
the unfused gradient is within 1e-6 of a float64 reference, the fused one is exactly the
unfused one rounded to bf16. In bf16 the unfused path rounds its fp32 gradient to the bf16
logits' dtype at the same point, so both are within one bf16 rounding of float64 (they differ
by one bf16 ulp on a few entries in 10^4, where fp32's last bit tips the rounding); the trainer
therefore turns the fusion on by default in bf16 only (``train.fused_cross_entropy``).
"""

from __future__ import annotations

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch
import torch.nn.functional as F

from l3_core.parallel import cpu_compat
from l3_core.parallel.groups import init_distributed, shutdown
from l3_core.run_config import ParallelSizes

SEQ, BATCH, VOCAB = 16, 2, 512


@pytest.fixture(scope="module")
def tp_group():
    with cpu_compat.scope():
        init_distributed(ParallelSizes())
        from megatron.core import parallel_state as ps

        yield ps.get_tensor_model_parallel_group()
        shutdown()


def _logits_and_targets(dtype):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(SEQ, BATCH, VOCAB, generator=g) * 3).to(dtype)
    return logits, torch.randint(0, VOCAB, (SEQ, BATCH), generator=g)


def _loss_and_grad(fn, logits, target):
    x = logits.clone().requires_grad_(True)
    loss = fn(x, target)
    loss.sum().backward()
    return loss.detach(), x.grad


def _reference(x, t):
    return F.cross_entropy(x.flatten(0, 1), t.flatten(), reduction="none").view(t.shape)


def _rel(g: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest relative error of ``g`` against ``ref`` over the entries that matter."""
    big = ref.abs() > 1e-4
    return ((g.double() - ref).abs()[big] / ref.abs()[big]).max().item()


def _paths(tp_group):
    from megatron.core.fusions.fused_cross_entropy import fused_vocab_parallel_cross_entropy
    from megatron.core.tensor_parallel import vocab_parallel_cross_entropy

    return (
        vocab_parallel_cross_entropy,
        lambda x, t: fused_vocab_parallel_cross_entropy(x, t, tp_group),
    )


def test_in_fp32_the_fused_gradient_is_the_exact_one_rounded_to_bf16(tp_group):
    unfused, fused = _paths(tp_group)
    logits, target = _logits_and_targets(torch.float32)
    ref_loss, ref_grad = _loss_and_grad(_reference, logits.double(), target)
    u_loss, u_grad = _loss_and_grad(unfused, logits, target)
    f_loss, f_grad = _loss_and_grad(fused, logits, target)
    # the forward passes agree to fp32 rounding (the fused one is scripted as other kernels)
    assert torch.allclose(f_loss, u_loss, rtol=1e-6, atol=0)
    assert torch.allclose(u_loss.double(), ref_loss, rtol=1e-6, atol=0)

    assert _rel(u_grad, ref_grad) < 1e-5  # the unfused gradient is the closer one
    assert 2**-12 < _rel(f_grad, ref_grad) <= 2**-8  # bf16's rounding, no more
    assert torch.equal(f_grad, u_grad.to(torch.bfloat16).float())  # and nothing else


def test_in_bf16_the_fused_gradient_is_as_close_to_float64_as_the_unfused_one(tp_group):
    unfused, fused = _paths(tp_group)
    logits, target = _logits_and_targets(torch.bfloat16)
    _, ref_grad = _loss_and_grad(_reference, logits.double(), target)
    u_loss, u_grad = _loss_and_grad(unfused, logits, target)
    f_loss, f_grad = _loss_and_grad(fused, logits, target)
    assert u_grad.dtype == f_grad.dtype == torch.bfloat16
    assert torch.allclose(f_loss, u_loss, rtol=1e-6, atol=0)  # fp32 losses, as in fp32
    # both round the same fp32 gradient to the bf16 logits' dtype: each is within one bf16
    # rounding of float64, and they differ only where fp32's last bit tips that rounding
    assert _rel(u_grad, ref_grad) <= 2**-8 and _rel(f_grad, ref_grad) <= 2**-8
    assert (f_grad != u_grad).float().mean() < 1e-3
