"""Stacked projection weights: gradients reach the plain parameters, copies follow updates."""

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.kernels.cpu import stacked
from l3_core.kernels.cpu.modules import stacked_projection


def _linears(seed=0):
    torch.manual_seed(seed)
    return [nn.Linear(8, n, bias=False).double() for n in (6, 2, 2)]


def test_with_autograd_the_stack_is_in_the_graph_and_gradients_reach_each_part():
    owner, linears = nn.Module(), _linears()
    x = torch.randn(5, 8, dtype=torch.float64)
    out = stacked_projection(owner, x, linears)
    ref = torch.cat([m(x) for m in linears], dim=-1)
    torch.testing.assert_close(out, ref, rtol=1e-14, atol=1e-14)
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, [m.weight for m in linears], grad)
    want = torch.autograd.grad(ref, [m.weight for m in linears], grad)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)
    assert owner not in stacked._CACHE  # nothing kept while training


def test_without_autograd_the_stack_is_kept_until_a_part_changes():
    owner, linears = nn.Module(), _linears()
    weights = [m.weight for m in linears]
    with torch.no_grad():
        first = stacked.stacked_weight(owner, weights)
        assert stacked.stacked_weight(owner, weights) is first
        weights[1].mul_(3.0)  # an optimizer step, as the version counter sees it
        again = stacked.stacked_weight(owner, weights)
    assert again is not first and torch.equal(again, torch.cat(weights).detach())
    stacked.release([owner])
    assert owner not in stacked._CACHE


def test_past_the_budget_the_parts_run_as_separate_modules(monkeypatch):
    owner, linears = nn.Module(), _linears()
    monkeypatch.setattr(stacked, "MAX_STACKED_BYTES", 8)
    x = torch.randn(3, 8, dtype=torch.float64)
    with torch.no_grad():
        assert stacked.stacked_weight(owner, [m.weight for m in linears]) is None
        out = stacked_projection(owner, x, linears)
    torch.testing.assert_close(out, torch.cat([F.linear(x, m.weight) for m in linears], -1))
