"""SwiGLU's autograd node and the feed-forward module that uses it, against the plain block."""

import torch
import torch.nn.functional as F

from l3_core.kernels.cpu.modules import CpuFeedForward
from l3_core.kernels.cpu.swiglu import swiglu
from l3_core.model.feed_forward import FeedForward


def test_swiglu_equals_its_expression_and_passes_gradcheck():
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    gate, up = x.chunk(2, dim=-1)
    assert torch.equal(swiglu(x), F.silu(gate) * up)
    assert torch.autograd.gradcheck(swiglu, (x,))


def test_module_equals_the_plain_feed_forward_with_gradients_in_float64():
    ffn = CpuFeedForward(24, 40).double()
    x = torch.randn(3, 5, 24, dtype=torch.float64, requires_grad=True)
    params = [x, ffn.w1.weight, ffn.w3.weight, ffn.w2.weight]
    ours = ffn(x)
    ref = FeedForward.forward(ffn, x)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(ours, params, grad), torch.autograd.grad(ref, params, grad)
    ):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
