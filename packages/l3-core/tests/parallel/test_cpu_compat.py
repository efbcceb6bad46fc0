"""The CPU compatibility layer maps CUDA requests to the CPU and leaves CUDA machines alone."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from l3_core.parallel import cpu_compat


def test_cuda_allocations_and_type_checks_become_cpu_ones():
    assert cpu_compat.apply() is True
    x = torch.zeros(3, device="cuda")
    y = torch.empty(2, device=torch.cuda.current_device())
    assert x.device.type == y.device.type == "cpu"
    assert x.cuda() is x and x.to("cuda").device.type == "cpu"
    assert x.type() == "torch.cuda.FloatTensor"
    assert x.bfloat16().type() == "torch.cuda.BFloat16Tensor"
    torch.cuda.synchronize()
    torch.cuda.current_stream().wait_stream(torch.cuda.Stream())


def test_cuda_rng_state_is_the_cpu_generators():
    cpu_compat.apply()
    torch.manual_seed(0)
    state = torch.cuda.get_rng_state()
    a = torch.rand(3)
    torch.cuda.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


def test_nothing_is_patched_when_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert cpu_compat.apply() is False
