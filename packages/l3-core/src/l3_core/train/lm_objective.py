"""The pre-training objective: the packed token stream and the language-model loss.

Each row packs whole documents with restarting positions and document ids (attention never
crosses a document when ``data.document_mask`` is on); Megatron's vocabulary-parallel
cross-entropy gives per-token losses on the last stage, and the loss is their sum over the
scored tokens (``loss_mask``), counted in tokens. ``hits`` counts the scored tokens the model
gives probability above 1/2 (the long-context needle checks use it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from l3_core.train.data import Batch, open_packed_stream
from l3_core.train.objective import (
    BatchSource,
    Layout,
    LossParts,
    Objective,
    register_objective,
    split_rows_and_columns,
)

if TYPE_CHECKING:
    from l3_core.args import ModelArgs
    from l3_core.run_config import RunConfig

_COLUMNS = ("tokens", "labels", "loss_mask", "positions", "doc_ids")


@register_objective("lm")
class LanguageModelObjective(Objective):
    """Next-token prediction on packed rows; see the module docstring."""

    metric_names: ClassVar[tuple[str, ...]] = ("hits",)

    def __init__(self, cfg: RunConfig) -> None:
        self.data = cfg.data  # read at each step: document_mask may be switched between steps

    def open_data(self, cfg: RunConfig, args: ModelArgs) -> BatchSource:
        return open_packed_stream(cfg.data, cfg.train.seed, args.vocab_size)

    def micro_batches(self, batch: Batch, layout: Layout) -> list[dict[str, torch.Tensor | None]]:
        micro: list[dict[str, torch.Tensor | None]] = [
            dict(m) for m in split_rows_and_columns(batch, layout, columns=_COLUMNS)
        ]
        if not self.data.document_mask:
            # one sequence per row: positions are the global column indices
            cols = layout.columns(batch.tokens.shape[1])
            for m in micro:
                tokens = m["tokens"]
                assert tokens is not None  # a column of every micro-batch
                shape = tokens.shape
                m["positions"] = torch.from_numpy(np.broadcast_to(cols, shape).copy()).to(
                    layout.device
                )
                m["doc_ids"] = None
        return micro

    def forward(
        self, model: torch.nn.Module, micro: dict[str, torch.Tensor | None]
    ) -> torch.Tensor:
        return model(micro["tokens"], micro["positions"], micro["doc_ids"], labels=micro["labels"])

    def loss(self, micro: dict[str, torch.Tensor | None], output: torch.Tensor) -> LossParts:
        losses = output.float().reshape(-1)
        loss_mask = micro["loss_mask"]
        assert loss_mask is not None  # a column of every micro-batch
        mask = loss_mask.reshape(-1).float()
        hits = ((losses.detach() < math.log(2)).float() * mask).sum()  # p(target) > 1/2
        return LossParts((losses * mask).sum(), mask.sum(), {"hits": hits})
