"""Projection weights stacked into one matrix, so that wq/wk/wv (and w1/w3) are one GEMM.

The plain modules' parameters stay the source of truth. With autograd recording, the stack is
a ``torch.cat`` in the graph (gradients reach each part; one copy of the weights per call,
small next to the GEMM over a batch). Without it (evaluation, generation) the stack is built
once and kept while its parts are unchanged: the key holds each part's storage and version
counter, so an optimizer step or ``load_state_dict`` rebuilds it. Writes through ``.data``
bypass version counters: after them, or to free the memory, call :func:`release`.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import torch
from torch import nn

# Stacked copies are extra memory; beyond this in all, projections run as separate GEMMs
# rather than risk a large model's footprint.
MAX_STACKED_BYTES = 4 * 2**30

_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, torch.Tensor]] = (
    weakref.WeakKeyDictionary()
)


def _key(weights: Sequence[torch.Tensor]) -> tuple:
    return tuple((w.data_ptr(), w._version, w.dtype, w.device) for w in weights)


def stacked_weight(owner: nn.Module, weights: Sequence[torch.Tensor]) -> torch.Tensor | None:
    """``cat(weights)`` along the rows, kept for ``owner`` where nothing records gradients;
    None where keeping it would pass :data:`MAX_STACKED_BYTES` (run the parts separately)."""
    if torch.is_grad_enabled() and any(w.requires_grad for w in weights):
        return torch.cat(list(weights))
    key = _key(weights)
    cached = _CACHE.get(owner)
    if cached is not None and cached[0] == key:
        return cached[1]
    size = sum(w.numel() * w.element_size() for w in weights)
    kept = sum(t.numel() * t.element_size() for k, (_, t) in _CACHE.items() if k is not owner)
    if kept + size > MAX_STACKED_BYTES:
        return None
    # A plain tensor even inside inference mode: the packed decode weights read its version.
    with torch.inference_mode(False), torch.no_grad():
        stacked = torch.cat([w.detach() for w in weights])
    _CACHE[owner] = (key, stacked)
    return stacked


def release(modules: Sequence[nn.Module]) -> None:
    """Drop the stacked copies kept for ``modules``."""
    for module in modules:
        _CACHE.pop(module, None)
