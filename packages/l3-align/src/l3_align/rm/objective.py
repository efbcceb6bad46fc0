"""The reward model as an objective on l3-core's trainer: a bias-free scalar head on the
final-norm hidden state of each response's last token, trained with the ranking loss.

A preference row is packed prompt-once (paper 4.1.2): its prompt once, then each response, as
one group of sequences in a packed row (``member`` 0 the prompt, 1.. the responses; a
data-parallel split keeps a group together). The objective states the attention as a dense
mask (l3-core's trainer takes one in place of document ids): a response attends to its own
group's prompt and to itself only, and its positions continue from the prompt's end, so its
score equals the one of ``prompt + response`` run alone (:mod:`l3_align.rm.packing` is the
same rule for scoring). ``kind`` says which of RANKED a response is; the loss reads each
response's score at its last token and its kind one token earlier (masks are shifted with the
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

COLUMNS = ("tokens", "labels", "positions", "doc_ids", "group", "member", "kind")
CHOSEN, REJECTED = RANKED.index("chosen"), RANKED.index("rejected")


def reward_items(group: Group, present: torch.Tensor) -> list[PackItem]:
    """A preference row as a packing group: the prompt, then its responses (RANKED order,
    absent ones left out), each response as its own sequence."""
    kinds = [k for k in range(len(RANKED)) if bool(present[k])]
    prompt = np.asarray(group.prompt, np.int64)
    return [
        PackItem(prompt, {"kind": np.zeros(len(prompt), np.int64)}),
        *(
            PackItem(np.asarray(response, np.int64), {"kind": np.full(len(response), kind)})
            for kind, response in zip(kinds, group.responses)
        ),
    ]


def prompt_once_inputs(micro: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The positions [b, s] (a response's continue from its prompt's end) and the boolean
    attention mask [b, 1, s, s]: causal, within a sequence, and from a response to its own
    group's prompt. Padding (its own sequence) attends to padding only."""
    group, member, doc = micro["group"], micro["member"], micro["doc_ids"]
    b, s = group.shape
    groups = max(int(group.max()) + 1, 1)
    slot = torch.arange(b, device=group.device)[:, None] * groups + group.clamp(min=0)
    is_prompt = (member == 0) & (group >= 0)
    prompt_len = torch.zeros(b * groups, dtype=torch.long, device=group.device)
    prompt_len.index_add_(0, slot[is_prompt], torch.ones_like(slot[is_prompt]))
    response = (member > 0) & (group >= 0)
    positions = micro["positions"] + torch.where(response, prompt_len[slot], 0)
    idx = torch.arange(s, device=group.device)
    causal = idx[None, :] <= idx[:, None]
    same_seq = doc[:, :, None] == doc[:, None, :]
    to_prompt = (group[:, :, None] == group[:, None, :]) & is_prompt[:, None, :]
    return positions, (causal & (same_seq | (to_prompt & response[:, :, None]))).unsqueeze(1)


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
    last = (micro["member"] > 0) & (group >= 0) & (doc != following)  # responses' last tokens
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
        positions, mask = prompt_once_inputs(micro)
        return model(micro["tokens"], positions, mask)

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
