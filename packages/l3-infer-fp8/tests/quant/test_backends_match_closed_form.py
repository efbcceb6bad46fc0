"""Both GEMM backends compute the quantised product: equal to its float64 closed form and to
each other within bf16 rounding, with scales applied to the right axes (non-square shapes)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_infer_fp8.errors import InferConfigError
from l3_infer_fp8.quant import BACKENDS, Fp8RowwiseLinear, quantize_activation, select_backend

BF16_EPS = 2.0**-8


def _closed_form(qx, sx, qw, sw) -> torch.Tensor:
    """sum_k (qx[m,k] sx[m]) (qw[n,k] sw[n]) in float64."""
    return (qx.double() * sx.double()) @ (qw.double() * sw.double()).t()


def _abs_dot(qx, sx, qw, sw) -> torch.Tensor:
    return (qx.double().abs() * sx.double()) @ (qw.double().abs() * sw.double()).t()


def _check(out: torch.Tensor, ref: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype):
    # One output rounding (2^-8 relative in bf16) plus fp32 accumulation-order error; at most
    # two roundings for the emulated backend in bf16 (its product, then its scaling).
    rounding = 2 * BF16_EPS if dtype == torch.bfloat16 else 2.0**-20
    bound = rounding * ref.abs() + 2.0**-20 * scale + 1e-30
    err = (out.double() - ref).abs()
    assert bool((err <= bound).all()), f"max excess {float((err - bound).max())}"


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("m", "k", "n"), [(1, 64, 192), (7, 192, 64), (33, 48, 80)])
def test_backend_equals_float64_closed_form(backend, dtype, m, k, n):
    g = torch.Generator().manual_seed(m * 1000 + k + n)
    lin = torch.nn.Linear(k, n, bias=False)
    lin.weight.data.copy_(torch.randn(n, k, generator=g) * torch.rand(n, 1, generator=g) * 4)
    q = Fp8RowwiseLinear.from_linear(lin, backend=backend)
    x = (torch.randn(m, k, generator=g) * torch.rand(m, 1, generator=g) * 50).to(dtype)
    out = q(x)
    assert out.dtype == dtype and out.shape == (m, n)
    qx, sx = quantize_activation(x)
    ref = _closed_form(qx, sx, q.weight, q.weight_scale)
    _check(out, ref, _abs_dot(qx, sx, q.weight, q.weight_scale), dtype)


def test_backends_agree_within_bf16_rounding_on_3d_input():
    g = torch.Generator().manual_seed(5)
    lin = torch.nn.Linear(64, 96, bias=False)
    x = torch.randn(2, 5, 64, generator=g).bfloat16()
    outs = [Fp8RowwiseLinear.from_linear(lin, backend=b)(x) for b in sorted(BACKENDS)]
    assert outs[0].shape == (2, 5, 96)
    torch.testing.assert_close(outs[0].float(), outs[1].float(), rtol=2 * BF16_EPS, atol=1e-3)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 9),
    k=st.integers(1, 40),
    n=st.integers(1, 40),
    log_scale=st.floats(-6, 3),
    seed=st.integers(0, 2**16),
)
def test_property_every_backend_matches_closed_form(m, k, n, log_scale, seed):
    g = torch.Generator().manual_seed(seed)
    lin = torch.nn.Linear(k, n, bias=False)
    lin.weight.data.copy_(torch.randn(n, k, generator=g))
    x = torch.randn(m, k, generator=g) * 10**log_scale
    qx, sx = quantize_activation(x)
    for name in BACKENDS:
        q = Fp8RowwiseLinear.from_linear(lin, backend=name)
        ref = _closed_form(qx, sx, q.weight, q.weight_scale)
        _check(q(x), ref, _abs_dot(qx, sx, q.weight, q.weight_scale), torch.float32)


def test_auto_selects_a_supported_backend_and_names_are_checked():
    assert select_backend("cpu", 64, 64).name in BACKENDS
    with pytest.raises(InferConfigError, match="unknown FP8 backend 'cublas'"):
        select_backend("cpu", 64, 64, "cublas")
