"""The engine's packed projections compute F.linear, follow in-place weight updates, and fall
back to F.linear for one row and beyond their memory budget."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from l3_infer_fp8.engine.packed import PackedLinears, _supported

pytestmark = pytest.mark.skipif(
    not _supported(torch.float32), reason="this torch build has no oneDNN linear"
)


def _inputs(rows: int):
    g = torch.Generator().manual_seed(rows)
    return torch.randn(rows, 96, generator=g), torch.randn(160, 96, generator=g)


@pytest.mark.parametrize("rows", [2, 17, 300])
def test_packed_linear_equals_f_linear(rows):
    x, w = _inputs(rows)
    packed = PackedLinears()
    torch.testing.assert_close(packed.linear("w", x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)
    assert packed._bytes == w.numel() * 4  # a packed copy was really made


def test_in_place_update_repacks():
    x, w = _inputs(8)
    packed = PackedLinears()
    packed.linear("w", x, w)
    with torch.no_grad():
        w.mul_(2.0)
    torch.testing.assert_close(packed.linear("w", x, w), F.linear(x, w), rtol=1e-5, atol=1e-5)


def test_one_row_and_over_budget_use_f_linear():
    x, w = _inputs(1)
    packed = PackedLinears(max_bytes=w.numel() * 4 - 1)
    assert torch.equal(packed.linear("w", x, w), F.linear(x, w))
    x8 = torch.randn(8, 96)
    assert torch.equal(packed.linear("w", x8, w), F.linear(x8, w))
    assert packed._bytes == 0
