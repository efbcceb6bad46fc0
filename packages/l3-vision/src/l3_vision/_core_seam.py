"""How l3-vision runs layers between the frozen model's blocks: through l3-core's layer hook.

l3-core's ``Transformer.blocks`` runs every block through ``Transformer.layer_forward``, the
extension point for extra layers around a block. :func:`hook_layers` gives the language model
(once, in place, as ``l3_core.kernels`` swaps classes) a subclass whose ``layer_forward`` runs
the callables of the current forward before their blocks; :func:`blocks_with_insertions` sets
them for one call of ``Transformer.blocks``. Kernels applied later keep the hook (l3-core
derives its kernel classes from the model's own class).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar

import torch

from l3_core.model import Transformer

Insertions = Mapping[int, Callable[[torch.Tensor], torch.Tensor]]


class _InsertionHook:
    """Runs ``self._insert_before[i](h)`` before block ``i``; none outside an insertion call,
    so a text-only forward is the frozen model's own."""

    _insert_before: ClassVar[Insertions] = {}

    def layer_forward(self, i: int, layer, h: torch.Tensor, *rest):
        insert = self._insert_before.get(i)
        if insert is not None:
            h = insert(h)
        return super().layer_forward(i, layer, h, *rest)  # type: ignore[misc]


_HOOKED: dict[type, type] = {}


def _hooked_class(cls: type[Transformer]) -> type[Transformer]:
    if cls not in _HOOKED:
        _HOOKED[cls] = type(cls.__name__, (_InsertionHook, cls), {"__module__": cls.__module__})
    return _HOOKED[cls]


def hook_layers(model: Transformer) -> Transformer:
    """Give ``model`` the insertion hook (idempotent); its parameters and forward are unchanged."""
    if not isinstance(model, _InsertionHook):
        model.__class__ = _hooked_class(type(model))
    return model


@contextmanager
def _inserted(model: Transformer, insert_before: Insertions) -> Iterator[None]:
    model.__dict__["_insert_before"] = insert_before
    try:
        yield
    finally:
        del model.__dict__["_insert_before"]


def blocks_with_insertions(
    model: Transformer,
    h: torch.Tensor,
    positions: torch.Tensor,
    insert_before: Insertions,
) -> torch.Tensor:
    """``Transformer.blocks`` (causal, no cache) on embeddings ``h`` with
    ``insert_before[i](h)`` applied before layer ``i``."""
    hook_layers(model)
    with _inserted(model, insert_before):
        return model.blocks(h, positions, None)
