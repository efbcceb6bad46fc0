"""The reward model as an objective on l3-core's trainer: a bias-free scalar head on the
final-norm hidden state of each response's last token, trained with the ranking loss.

Every response of a preference row is its own sequence ``prompt + response`` in one packed row
(the row's sequences form a group, so a data-parallel split keeps them together); the trainer's
document mask keeps each sequence to itself, so a score equals the one of the sequence run
alone. (Prompt-once packing, :mod:`l3_align.rm.packing`, needs a mask document ids cannot state;
it is the scoring path.) ``kind`` says which of RANKED a sequence is; the loss reads each
sequence's score at its last token and its kind one token earlier (masks are shifted with the
labels, so a sequence's last position holds none). The loss is a sum over the ordered pairs a
row holds, counted in pairs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from l3_align.data.packing import PackItem
from l3_align.rm.losses import RANKED, loss_pairs
from l3_align.rm.packing import Group
from l3_align.train.packed import PackedObjective
from l3_core.train.objective import LossParts, StepResult

if TYPE_CHECKING:
    from l3_align.train.packed import DataFactory
    from l3_core.args import ModelArgs

COLUMNS = ("tokens", "labels", "positions", "doc_ids", "group", "kind")
CHOSEN, REJECTED = RANKED.index("chosen"), RANKED.index("rejected")


def reward_items(group: Group, present: torch.Tensor) -> list[PackItem]:
    """A preference row's responses (RANKED order, absent ones left out) as whole sequences."""
    kinds = [k for k in range(len(RANKED)) if bool(present[k])]
    return [
        PackItem(
            np.asarray([*group.prompt, *response], np.int64),
            {"kind": np.full(len(group.prompt) + len(response), kind, np.int64)},
        )
        for kind, response in zip(kinds, group.responses)
    ]


def score_head(args: ModelArgs, seed: int) -> nn.Linear:
    """The head, initialised from ``seed`` alone (identical on every rank)."""
    head = nn.Linear(args.dim, 1, bias=False)
    with torch.no_grad():
        nn.init.normal_(
            head.weight, std=args.dim**-0.5, generator=torch.Generator().manual_seed(seed)
        )
    return head


def row_scores(
    micro: dict[str, torch.Tensor], scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (row, group): the scores [n, 3] in RANKED columns and which are present [n, 3]."""
    group, doc = micro["group"], micro["doc_ids"]
    b = group.shape[0]
    following = torch.cat([doc[:, 1:], torch.full_like(doc[:, :1], -1)], 1)
    last = (group >= 0) & (doc != following)
    kind = torch.cat([torch.zeros_like(micro["kind"][:, :1]), micro["kind"][:, :-1]], 1)
    groups = max(int(group.max()) + 1, 0)
    slot = ((torch.arange(b, device=group.device)[:, None] * groups + group) * 3 + kind)[last]
    table = torch.zeros(b * groups * 3, dtype=scores.dtype, device=scores.device)
    table = table.index_add(0, slot, scores[last])
    present = torch.zeros(b * groups * 3, dtype=torch.bool, device=scores.device)
    present[slot] = True
    return table.view(-1, 3), present.view(-1, 3)


class RewardObjective(PackedObjective):
    """The ranking loss on the head's scores; ``accuracy`` is the share of rows whose chosen
    response scores above its rejected one."""

    columns = COLUMNS
    metric_names: ClassVar[tuple[str, ...]] = ("correct", "pref_rows")

    def __init__(self, loss: str, seed: int, data: DataFactory | None = None) -> None:
        super().__init__(data)
        self.pairs, self.seed = loss_pairs(loss), seed

    def head(self, args: ModelArgs) -> nn.Module:
        return score_head(args, self.seed)

    def trains(self, name: str) -> bool:
        return not name.startswith("output_layer.")  # the LM head is not used

    def forward(self, model: torch.nn.Module, micro: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(micro["tokens"], micro["positions"], micro["doc_ids"])

    def loss(self, micro: dict[str, torch.Tensor], output: torch.Tensor) -> LossParts:
        table, present = row_scores(micro, output.float().squeeze(-1))
        terms, count = [], []
        for i, j in self.pairs:
            both = present[:, i] & present[:, j]
            diff = torch.where(both, table[:, i] - table[:, j], torch.zeros_like(table[:, i]))
            terms.append((-F.logsigmoid(diff) * both).sum())
            count.append(both.sum())
        scored = present[:, CHOSEN] & present[:, REJECTED]
        correct = ((table[:, CHOSEN] > table[:, REJECTED]) & scored).sum()
        return LossParts(
            torch.stack(terms).sum(),
            torch.stack(count).sum(),
            {"correct": correct.detach().float(), "pref_rows": scored.sum().float()},
        )

    def figures(self, result: StepResult) -> dict[str, float]:
        return {"accuracy": result.metrics["correct"] / max(result.metrics["pref_rows"], 1.0)}
