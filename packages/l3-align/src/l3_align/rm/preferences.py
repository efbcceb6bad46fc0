"""Preference rows (:mod:`l3_align.data`) as prompt-once groups for the reward model.

The prompt is encoded once (chat format up to the open assistant header), each response the
row holds as an assistant turn after it (content and ``<|eot_id|>``). A packed group must fit
the model's sequence length; a row whose prompt and responses together do not is excluded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from l3_align.data.encode import ChatEncoder
from l3_align.data.read import read_preference_rows
from l3_align.data.rows import PreferenceRow, RowError
from l3_align.rm.losses import RANKED
from l3_align.rm.packing import Group, pack_groups
from l3_core.jsonl import Exclusions

if TYPE_CHECKING:
    from l3_align.rm.model import RewardModel


@dataclass(frozen=True)
class EncodedRows:
    """Encoded preference rows: a group per row (responses in RANKED order, absent ones left
    out) and the presence mask [rows, 3] of the RANKED kinds."""

    groups: list[Group]
    present: torch.Tensor
    lines: list[int] = field(default_factory=list)  # each row's line in its file, when read

    def __len__(self) -> int:
        return len(self.groups)

    def take(self, index: Sequence[int]) -> EncodedRows:
        index = list(index)
        lines = [self.lines[i] for i in index] if self.lines else []
        return EncodedRows([self.groups[i] for i in index], self.present[index], lines)


def responses_of(row: PreferenceRow) -> dict[str, str | None]:
    return {"edited": row.edited, "chosen": row.chosen, "rejected": row.rejected}


def encode_preference(encoder: ChatEncoder, row: PreferenceRow) -> tuple[Group, torch.Tensor]:
    """The row's group and its presence mask [3]; :class:`RowError` when it does not fit."""
    texts = responses_of(row)
    kinds = [k for k in RANKED if texts[k] is not None]
    prompt = encoder.prompt(row.prompt).tokens.tolist()
    responses = [encoder.response(texts[k]).tokens.tolist() for k in kinds]
    group = Group(prompt, responses)
    if group.length > encoder.max_len:
        raise RowError(
            f"prompt and responses packed together are {group.length} tokens, more than the "
            f"sequence length {encoder.max_len}"
        )
    return group, torch.tensor([texts[k] is not None for k in RANKED])


def encode_reward_file(
    path: str | os.PathLike[str], encoder: ChatEncoder, exclusions: Exclusions
) -> EncodedRows:
    """Every usable row of ``path``; the others go to ``exclusions`` with file, line, reason."""
    groups, present, lines = [], [], []
    for row in read_preference_rows(path, exclusions):
        try:
            group, mask = encode_preference(encoder, row)
        except RowError as e:
            exclusions.reject(row.source, row.line, str(e))
            continue
        groups.append(group)
        present.append(mask)
        lines.append(row.line)
    empty = torch.zeros(0, 3, dtype=torch.bool)
    return EncodedRows(groups, torch.stack(present) if present else empty, lines)


def scatter_scores(flat: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
    """Per-group scores into a [rows, 3] tensor in RANKED columns (0 where absent)."""
    out = torch.zeros(present.shape, dtype=flat[0].dtype, device=flat[0].device)
    return out.masked_scatter(present.to(out.device), torch.cat(flat))


def batch_scores(
    rm: RewardModel, rows: EncodedRows, pad_id: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Scores [rows, 3] (RANKED columns, 0 where absent) of ``rows``, packed prompt-once."""
    packed = pack_groups(rows.groups, pad_id, generator, rm.device)
    flat = list(rm(packed).split(list(packed.group_sizes)))
    return scatter_scores(flat, rows.present)
