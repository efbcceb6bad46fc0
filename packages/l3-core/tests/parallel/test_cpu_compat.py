"""The CPU compatibility scope maps CUDA requests to the CPU inside it, undoes every patch on
exit, nests, and leaves CUDA machines alone."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from torch.overrides import _get_current_function_mode_stack

from l3_core.errors import L3Error
from l3_core.parallel import cpu_compat, megatron_adapter


def _patched_state() -> dict[str, object]:
    """Everything the scope may replace, by identity."""
    from megatron.core.distributed import param_and_grad_buffer as buffers
    from megatron.core.pipeline_parallel import p2p_communication
    from megatron.core.tensor_parallel import random as mrandom

    names = [
        "current_device",
        "device_count",
        "synchronize",
        "empty_cache",
        "set_device",
        "Stream",
        "Event",
        "current_stream",
        "default_stream",
        "stream",
        "get_rng_state",
        "set_rng_state",
        "manual_seed",
        "memory_allocated",
        "max_memory_allocated",
    ]
    state: dict[str, object] = {f"cuda.{n}": getattr(torch.cuda, n) for n in names}
    state["nvtx.range_push"] = torch.cuda.nvtx.range_push
    state["nvtx.range_pop"] = torch.cuda.nvtx.range_pop
    state["dist.reduce_scatter_tensor"] = dist.reduce_scatter_tensor
    for owner, attr in [
        (buffers, "dist_reduce_scatter_func"),
        (buffers, "dist_all_gather_func"),
        (buffers, "_coalescing_manager"),
        (p2p_communication, "_batched_p2p_ops"),
        (mrandom, "_get_cuda_rng_state"),
        (mrandom, "_set_cuda_rng_state"),
    ]:
        state[f"{owner.__name__}.{attr}"] = getattr(owner, attr)
    return state


def test_cuda_allocations_and_type_checks_become_cpu_ones():
    with cpu_compat.scope() as applied:
        assert applied is True
        x = torch.zeros(3, device="cuda")
        y = torch.empty(2, device=torch.cuda.current_device())
        assert x.device.type == y.device.type == "cpu"
        assert x.cuda() is x and x.to("cuda").device.type == "cpu"
        assert x.type() == "torch.cuda.FloatTensor"
        assert x.bfloat16().type() == "torch.cuda.BFloat16Tensor"
        torch.cuda.synchronize()
        torch.cuda.current_stream().wait_stream(torch.cuda.Stream())


def test_cuda_rng_state_is_the_cpu_generators():
    with cpu_compat.scope():
        torch.manual_seed(0)
        state = torch.cuda.get_rng_state()
        a = torch.rand(3)
        torch.cuda.set_rng_state(state)
        assert torch.equal(torch.rand(3), a)


def test_scope_exit_restores_every_patch_and_the_mode_stack():
    before, modes = _patched_state(), _get_current_function_mode_stack()
    with cpu_compat.scope():
        inside = _patched_state()
        assert len(_get_current_function_mode_stack()) == len(modes) + 1
    changed = [k for k in before if inside[k] is not before[k]]
    assert len(changed) == len(before)  # the scope replaced every one of them
    after = _patched_state()
    assert [k for k in before if after[k] is not before[k]] == []
    assert _get_current_function_mode_stack() == modes
    assert not cpu_compat.active()
    assert torch.zeros(1).type() == "torch.FloatTensor"


def test_nested_scopes_install_once_and_undo_at_the_outermost_exit():
    before, depth = _patched_state(), len(_get_current_function_mode_stack())
    with cpu_compat.scope():
        outer = _patched_state()
        with cpu_compat.scope():
            assert _patched_state() == outer
            assert len(_get_current_function_mode_stack()) == depth + 1
        assert cpu_compat.active() and _patched_state() == outer  # the inner exit undid nothing
        assert torch.zeros(1, device="cuda").device.type == "cpu"
    assert _patched_state() == before and not cpu_compat.active()


def test_scope_is_undone_when_its_block_raises():
    before = _patched_state()
    with pytest.raises(RuntimeError, match="boom"), cpu_compat.scope():
        raise RuntimeError("boom")
    assert _patched_state() == before and not cpu_compat.active()


def test_nothing_is_patched_when_cuda_is_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    before = _patched_state()
    with cpu_compat.scope() as applied:
        assert applied is False
        assert _patched_state() == before


def test_another_megatron_version_is_refused_naming_both():
    megatron_adapter.check_version(megatron_adapter.SUPPORTED_VERSION)
    with pytest.raises(
        megatron_adapter.MegatronVersionError,
        match=r"megatron-core 0\.17\.0 is installed.*written for megatron-core 0\.16\.1",
    ):
        megatron_adapter.check_version("0.17.0")
    assert issubclass(megatron_adapter.MegatronVersionError, L3Error)
