"""SFT as an objective: packed dialogs, cross-entropy on the assistant tokens only, summed
and counted in tokens (so every split of the rows and columns computes the same mean)."""

from __future__ import annotations

import torch

from l3_align.data.encode import EncodedSequence
from l3_align.data.packing import PackItem
from l3_align.train.packed import PackedObjective
from l3_core.train.objective import LossParts

COLUMNS = ("tokens", "labels", "positions", "doc_ids", "loss_mask")


def sft_items(seq: EncodedSequence) -> list[PackItem]:
    return [PackItem(seq.tokens, {"loss_mask": seq.scored})]


class SFTObjective(PackedObjective):
    columns = COLUMNS
    token_sums = True

    def forward(self, model: torch.nn.Module, micro: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(micro["tokens"], micro["positions"], micro["doc_ids"], labels=micro["labels"])

    def loss(self, micro: dict[str, torch.Tensor], output: torch.Tensor) -> LossParts:
        mask = micro["loss_mask"].float()
        return LossParts((output.float() * mask).sum(), mask.sum())
