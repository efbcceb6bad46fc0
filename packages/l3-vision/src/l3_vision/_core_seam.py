"""The one place l3-vision reaches past l3-core's public model API (a seam to move into l3-core).

Adapters must run *between* the frozen model's self-attention layers, and
``Transformer.blocks`` runs them all at once. :func:`blocks_with_insertions` is
``Transformer.blocks`` with a callable run before chosen layers; it reads the model's rotary
table (``Transformer.rope``) and runs each block through ``Transformer.layer_forward`` as
``blocks`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from l3_core.model import Transformer


def blocks_with_insertions(
    model: Transformer,
    h: torch.Tensor,
    positions: torch.Tensor,
    insert_before: Mapping[int, Callable[[torch.Tensor], torch.Tensor]],
) -> torch.Tensor:
    """Causal self-attention blocks of ``model`` on embeddings ``h``, with
    ``insert_before[i](h)`` applied before layer ``i`` (before the final norm)."""
    cos, sin = model.rope.gather(positions, h.shape[1])
    for i, layer in enumerate(model.layers):
        if i in insert_before:
            h = insert_before[i](h)
        h = model.layer_forward(i, layer, h, cos, sin, None, None, 0)
    return h
