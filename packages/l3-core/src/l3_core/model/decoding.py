"""The plain one-token decoding step of :func:`~l3_core.model.generate.generate`: each new token
runs through the modules (embedding, blocks with their KV caches, norm, head)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from l3_core.model.attention import KVCache

if TYPE_CHECKING:
    from l3_core.model.transformer import Transformer

Decoder = Callable[[torch.Tensor, int], torch.Tensor]
"""``decoder(tokens [b], n) -> logits [b, vocab]`` for the ``n``-th generated token of each row."""


@dataclass(frozen=True)
class DecodeLayout:
    """Where a generation's later tokens go: prompts left-padded to ``start`` cache slots.

    The ``n``-th generated token is written to cache slot ``start + n`` at RoPE position
    ``positions[:, n]``; ``real_keys`` [b, capacity] is False on padding keys (None: no row is
    padded)."""

    start: int
    capacity: int
    positions: torch.Tensor
    real_keys: torch.Tensor | None


@dataclass(frozen=True)
class ModuleDecoder:
    """One step through the model's modules (any module may be replaced or wrapped)."""

    model: Transformer
    caches: list[KVCache]
    layout: DecodeLayout

    def __call__(self, tokens: torch.Tensor, n: int) -> torch.Tensor:
        slot = self.layout.start + n
        real = self.layout.real_keys
        mask = None if real is None else real[:, None, None, : slot + 1]
        h = self.model.tok_embeddings(tokens[:, None])
        positions = self.layout.positions[:, n : n + 1]
        return self.model.forward_hidden(h, positions, mask, self.caches, slot)[:, -1]
