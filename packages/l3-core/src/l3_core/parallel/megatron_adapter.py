"""Every private Megatron-core symbol and optimizer internal l3-core relies on, in one place.

The trainer is written against megatron-core 0.16.1. Its public API (``GPTModel``, the
schedules, DDP, ``get_megatron_optimizer``) covers most needs; what it does not cover is
reached here and nowhere else:

* the distributed optimizer's per-parameter shards (``model_float16_groups``,
  ``shard_fp32_from_float16_groups``, ``_get_model_param_range_map``), which checkpoints read
  and write in the plain layout;
* ``GPTModel._postprocess``, overridden so a last stage can return hidden states after the
  final norm instead of logits;
* the module attributes that :mod:`l3_core.parallel.cpu_compat` replaces to run on gloo
  (the grad-buffer collectives, the p2p batching and the "CUDA" RNG state accessors).

Importing this module checks the installed version: another version fails with
:class:`MegatronVersionError` naming both, rather than misbehaving somewhere deep inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from l3_core.errors import L3Error

if TYPE_CHECKING:  # the mixin goes before GPTModel, whose attributes it uses
    from megatron.core.models.gpt import GPTModel as _MixinBase
else:
    _MixinBase = object

SUPPORTED_VERSION = "0.16.1"


class MegatronVersionError(L3Error, ImportError):
    """The installed megatron-core is not the version this code was written for."""


def check_version(installed: str) -> None:
    """Raise :class:`MegatronVersionError` unless ``installed`` is the supported version."""
    if installed != SUPPORTED_VERSION:
        raise MegatronVersionError(
            f"megatron-core {installed} is installed, but l3-core's trainer is written for "
            f"megatron-core {SUPPORTED_VERSION} (it uses private APIs that change between "
            f"releases): pip install 'megatron-core=={SUPPORTED_VERSION}'"
        )


def installed_version() -> str:
    from megatron.core.package_info import __version__

    return __version__


check_version(installed_version())


# -- the distributed optimizer's shards ------------------------------------------------------


def param_slots(optimizer) -> Iterator[tuple[torch.nn.Parameter, torch.Tensor, slice, Any]]:
    """(model param, fp32 main shard, its slice of the flattened param, inner torch optimizer)
    for every parameter this rank's distributed-optimizer shard holds part of."""
    for opt in getattr(optimizer, "chained_optimizers", [optimizer]):
        pairs = list(zip(opt.model_float16_groups, opt.shard_fp32_from_float16_groups)) + list(
            zip(opt.model_fp32_groups, opt.shard_fp32_groups)
        )
        for model_group, shard_group in pairs:
            for p, shard in zip(model_group, shard_group):
                r = opt._get_model_param_range_map(p)["param"]
                yield p, shard, slice(r.start, r.end), opt.optimizer


# -- hidden states from the last stage -------------------------------------------------------


class HiddenOutputMixin(_MixinBase):
    """Put before ``GPTModel`` in the bases: when ``returns_hidden_states()``, the last stage
    returns ``output_from_hidden_states(hidden_states)`` (hidden states [s, b, dim] after the
    final norm, before the output layer) instead of logits or per-token losses."""

    def returns_hidden_states(self) -> bool:
        return False

    def output_from_hidden_states(self, hidden_states: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _postprocess(self, hidden_states, *args, **kwargs):
        if self.post_process and self.returns_hidden_states():
            return self.output_from_hidden_states(hidden_states)
        return super()._postprocess(hidden_states, *args, **kwargs)


# -- what cpu_compat replaces ----------------------------------------------------------------


def cpu_patch_points(
    *,
    reduce_scatter: Callable,
    all_gather: Callable,
    coalescing_manager: Callable,
    batched_p2p_ops: Callable,
    get_rng_state: Callable,
    set_rng_state: Callable,
) -> list[tuple[object, str, Any]]:
    """(owner, attribute, replacement) for each Megatron internal cpu_compat swaps on gloo."""
    from megatron.core.distributed import param_and_grad_buffer as buffers
    from megatron.core.pipeline_parallel import p2p_communication
    from megatron.core.tensor_parallel import random as mrandom

    return [
        (buffers, "dist_reduce_scatter_func", reduce_scatter),
        (buffers, "dist_all_gather_func", all_gather),
        (buffers, "_coalescing_manager", coalescing_manager),
        (p2p_communication, "_batched_p2p_ops", batched_p2p_ops),
        (mrandom, "_get_cuda_rng_state", get_rng_state),
        (mrandom, "_set_cuda_rng_state", set_rng_state),
    ]
