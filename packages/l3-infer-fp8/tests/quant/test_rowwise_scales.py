"""Row-wise scales: one per output row / token, floored at zero rows, clamped at the bound."""

from __future__ import annotations

import pytest
import torch

from l3_infer_fp8.errors import InferConfigError, InferModelError
from l3_infer_fp8.quant import (
    AMAX_FLOOR,
    FP8_MAX,
    Fp8RowwiseLinear,
    dequantize,
    quantize_activation,
    quantize_weight,
)

# e4m3: 3 mantissa bits, so rounding to nearest is within 2^-4 relative for normal values and
# within half the subnormal spacing 2^-9 (in units of the scale) below them.
REL = 2.0**-4
SUBNORMAL_HALF_STEP = 2.0**-10


def _error_bound(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x.abs() * REL + scale * SUBNORMAL_HALF_STEP


def test_weight_scale_is_row_amax_over_448():
    w = torch.randn(6, 10, generator=torch.Generator().manual_seed(0))
    _, scale = quantize_weight(w)
    assert scale.shape == (6, 1) and scale.dtype == torch.float32
    torch.testing.assert_close(scale, w.abs().amax(dim=1, keepdim=True) / FP8_MAX)


def test_one_huge_row_does_not_crush_the_others():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(8, 32, generator=g)
    w[3] *= 1e4  # a per-tensor (or per-input-channel) scale would flush the other rows to 0
    codes, scale = quantize_weight(w)
    deq = dequantize(codes, scale)
    assert bool(((deq - w).abs() <= _error_bound(w, scale)).all())
    others = torch.arange(8) != 3
    assert float((deq[others] != 0).float().mean()) > 0.95


def test_activation_scale_is_per_token():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 16, generator=g) * torch.tensor([1e-3, 1.0, 10.0, 100.0, 0.5])[:, None]
    codes, scale = quantize_activation(x)
    torch.testing.assert_close(scale, x.abs().amax(dim=1, keepdim=True) / FP8_MAX)
    assert bool(((dequantize(codes, scale) - x).abs() <= _error_bound(x, scale)).all())


def test_zero_rows_give_zero_not_nan():
    w = torch.randn(4, 16)
    w[2] = 0
    codes, scale = quantize_weight(w)
    assert bool((codes[2].float() == 0).all())
    assert float(scale[2]) == pytest.approx(AMAX_FLOOR / FP8_MAX) and bool(
        torch.isfinite(scale).all()
    )
    lin = torch.nn.Linear(16, 4, bias=False)
    lin.weight.data.copy_(w)
    q = Fp8RowwiseLinear.from_linear(lin, backend="emulated")
    x = torch.randn(3, 16)
    x[1] = 0
    y = q(x)
    assert bool(torch.isfinite(y).all())
    assert bool((y[:, 2] == 0).all()) and bool((y[1] == 0).all())


@pytest.mark.parametrize("backend", ["scaled_mm", "emulated"])
def test_huge_and_infinite_activations_are_clamped_to_a_finite_output(backend):
    lin = torch.nn.Linear(16, 8, bias=False)
    q = Fp8RowwiseLinear.from_linear(lin, bound=1200, backend=backend)
    x = torch.randn(3, 16)
    x[0, 5] = 1e30
    x[1, 7] = float("inf")
    x[1, 8] = float("-inf")
    codes, scale = quantize_activation(x, bound=1200)
    assert torch.equal(scale[:2], torch.full((2, 1), 1200 / FP8_MAX))
    assert float(dequantize(codes, scale)[0, 5]) == pytest.approx(1200)  # saturates at the bound
    y = q(x)
    assert bool(torch.isfinite(y).all())
    ref = Fp8RowwiseLinear.from_linear(lin, bound=1200, backend=backend)(x[2:])
    assert torch.equal(y[2:], ref)  # other tokens are untouched by the outliers


def test_nan_token_stays_nan_and_only_in_its_row():
    lin = torch.nn.Linear(16, 8, bias=False)
    q = Fp8RowwiseLinear.from_linear(lin, backend="emulated")
    x = torch.randn(3, 16)
    x[1, 0] = float("nan")
    y = q(x)
    assert bool(torch.isnan(y[1]).all())
    assert bool(torch.isfinite(y[[0, 2]]).all())


def test_non_finite_weights_are_refused_with_the_name():
    w = torch.randn(4, 8)
    w[1, 2] = float("nan")
    with pytest.raises(
        InferModelError, match=r"layers.1.feed_forward.w1.weight: non-finite values in rows \[1\]"
    ):
        quantize_weight(w, "layers.1.feed_forward.w1.weight")


@pytest.mark.parametrize("bound", [0, -1, float("inf"), float("nan")])
def test_invalid_bound_is_a_config_error(bound):
    with pytest.raises(InferConfigError, match="activation bound"):
        Fp8RowwiseLinear(4, 4, bound)
