"""The fused float32 RMSNorm against the plain model's two-step ``rms_norm``."""

import pytest
import torch

from l3_core.kernels.cpu.modules import CpuRMSNorm
from l3_core.kernels.cpu.norm import fused_rms_norm
from l3_core.model.norm import RMSNorm, rms_norm


def test_float32_fused_norm_is_bit_identical_with_equal_gradients():
    x = torch.randn(4, 7, 64, requires_grad=True)
    weight = (1 + 0.1 * torch.randn(64)).requires_grad_()
    ours, ref = fused_rms_norm(x, weight, 1e-5), rms_norm(x, weight, 1e-5)
    assert torch.equal(ours, ref)
    grad = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(ours, (x, weight), grad), torch.autograd.grad(ref, (x, weight), grad)
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64])
def test_other_dtypes_take_the_plain_expression(dtype):
    x = torch.randn(3, 32, dtype=dtype)
    norm = CpuRMSNorm(32).to(dtype)
    assert torch.equal(norm(x), RMSNorm.forward(norm, x))
