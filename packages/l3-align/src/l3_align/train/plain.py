"""The plain :class:`~l3_core.model.Transformer` called as l3-core's trainer calls its Megatron
model, so an objective's ``forward`` and ``loss`` run unchanged on it: reference log-probs
before training, held-out figures after, and the independent peer in the tests.

The Megatron model's last stage returns per-token losses when given labels, or an objective
head's output on the final-norm hidden states; :class:`TokenLosses` and :class:`HeadOutputs`
are those two calls. Positions follow from ``doc_ids`` (the plain model restarts them at each
document boundary, as the packer wrote them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model import Transformer, document_causal_mask, document_positions
from l3_core.train.objective import Layout, LossParts, Objective, StepResult


def one_process(micro_batch_size: int) -> Layout:
    """The layout of a single process on the CPU."""
    return Layout(1, 0, 1, 0, micro_batch_size, torch.device("cpu"))


class TokenLosses(nn.Module):
    """Per-token NLL [b, s] of ``labels``."""

    def __init__(self, model: Transformer) -> None:
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


class HeadOutputs(nn.Module):
    """``head`` applied to the final-norm hidden states [b, s, dim] (the LM head unused);
    ``doc_ids`` may be a boolean mask [b, 1, s, s] with its ``positions``, as for the trainer."""

    def __init__(self, model: Transformer, head: nn.Module) -> None:
        super().__init__()
        self.model, self.head = model, head

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None,
        doc_ids: torch.Tensor | None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        m = self.model
        if doc_ids is not None and doc_ids.dim() == 4:  # a dense mask, as the trainer takes
            pos, mask = positions, doc_ids
        else:
            pos = document_positions(doc_ids) if doc_ids is not None else positions
            mask = document_causal_mask(doc_ids) if doc_ids is not None else None
        return self.head(m.norm(m.blocks(m.embed(tokens), pos, mask)))


def step_sums(
    objective: Objective, net: nn.Module, micro_batches: Sequence[dict[str, torch.Tensor]]
) -> StepResult:
    """The loss and metric sums of ``objective`` over ``micro_batches`` (no gradient kept)."""
    parts: list[LossParts] = []
    with torch.no_grad():
        for micro in micro_batches:
            parts.append(objective.loss(micro, objective.forward(net, micro)))
    metrics = {k: float(sum(float(p.metrics[k]) for p in parts)) for k in objective.metric_names}
    return StepResult(
        float(sum(float(p.loss_sum) for p in parts)),
        float(sum(float(p.count) for p in parts)),
        metrics,
    )
