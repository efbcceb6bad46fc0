"""The objective seam, shaped like l3-core's trainer's (``l3_core.train.objective``, branch
``core-trainer``): an objective splits a global batch into micro-batches, runs the forward
step, and returns a loss **sum**, the **count** it is averaged over and named metric sums.

Until that seam is on main, :mod:`l3_align.train.runner` runs these objectives in one process
on the plain model; :class:`TokenLosses` gives the plain model the call the Megatron model has
(``model(tokens, positions, doc_ids, labels=...)`` -> per-token NLL), so an objective's
``forward`` is the same on both.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from l3_align.data.packing import PackedRows


@dataclass(frozen=True)
class Layout:
    """Which part of a global batch this rank computes (data-parallel rows only here)."""

    dp: int = 1
    dp_rank: int = 0
    micro_batch_size: int = 8
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass(frozen=True)
class LossParts:
    loss_sum: torch.Tensor
    count: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


def split_rows(
    batch: PackedRows, layout: Layout, names: Iterable[str]
) -> list[dict[str, torch.Tensor]]:
    """This rank's rows of ``batch`` in micro-batches, as tensors of the named arrays."""
    names = tuple(names)
    n = batch.n_rows // layout.dp
    start = layout.dp_rank * n
    out = []
    for i in range(start, start + n, layout.micro_batch_size):
        rows = slice(i, min(i + layout.micro_batch_size, start + n))
        out.append(
            {k: torch.from_numpy(batch.array(k)[rows].copy()).to(layout.device) for k in names}
        )
    return out


class TokenLosses(nn.Module):
    """The plain :class:`~l3_core.model.Transformer` called as the parallel trainer calls its
    model: per-token NLL [b, s] of ``labels``. Positions follow from ``doc_ids`` (the plain
    model restarts them at each boundary, as the packer wrote them)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None,
        doc_ids: torch.Tensor | None,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        logits = self.model(tokens, doc_ids)
        return F.cross_entropy(
            logits.float().flatten(0, 1), labels.flatten(), reduction="none"
        ).view_as(labels)
