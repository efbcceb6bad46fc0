"""Prompt-once packing: a prompt followed by several responses in one sequence.

Each response attends to the prompt and to its own earlier tokens only, and its RoPE positions
continue from the end of the prompt, so the hidden state of a response's last token is the one
the model computes for ``prompt + response`` alone: the prompt is run once per group instead
of once per response (Llama 3 paper, 4.1.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from l3_align.errors import AlignInputError

PROMPT_SEGMENT = 0
PAD_SEGMENT = -1


@dataclass(frozen=True)
class Group:
    """A prompt's token ids and the token ids of the responses scored against it."""

    prompt: Sequence[int]
    responses: Sequence[Sequence[int]]

    @property
    def length(self) -> int:
        return len(self.prompt) + sum(len(r) for r in self.responses)


@dataclass(frozen=True)
class PackedGroups:
    """A batch of packed groups, one per row, right-padded to the longest.

    ``last_index`` [n] is the flat index (row * seq + column) of each response's last token,
    listed group by group and, within a group, in the order of ``Group.responses`` (whatever
    order the responses were laid out in); ``group_sizes`` says how many belong to each group.
    """

    tokens: torch.Tensor  # [b, s] int64
    positions: torch.Tensor  # [b, s] int64
    mask: torch.Tensor  # [b, 1, s, s] bool, True = attend
    last_index: torch.Tensor  # [n] int64
    group_sizes: tuple[int, ...]


def pack_groups(
    groups: Sequence[Group],
    pad_id: int = 0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> PackedGroups:
    """Pack each group as ``prompt, responses...`` in one row; with ``generator`` the responses
    of each row are laid out in a random order (so no response learns its slot)."""
    if not groups:
        raise AlignInputError("pack_groups needs at least one group")
    for i, g in enumerate(groups):
        if not g.prompt or not g.responses or any(len(r) == 0 for r in g.responses):
            raise AlignInputError(f"group {i}: the prompt and every response must be non-empty")
    s = max(g.length for g in groups)
    b = len(groups)
    tokens = torch.full((b, s), pad_id, dtype=torch.long)
    positions = torch.zeros((b, s), dtype=torch.long)
    segments = torch.full((b, s), PAD_SEGMENT, dtype=torch.long)
    last = []
    for row, g in enumerate(groups):
        p = len(g.prompt)
        tokens[row, :p] = torch.tensor(list(g.prompt), dtype=torch.long)
        positions[row, :p] = torch.arange(p)
        segments[row, :p] = PROMPT_SEGMENT
        order = _layout_order(len(g.responses), generator)
        ends = [0] * len(g.responses)
        start = p
        for slot in order:
            r = g.responses[slot]
            end = start + len(r)
            tokens[row, start:end] = torch.tensor(list(r), dtype=torch.long)
            positions[row, start:end] = torch.arange(p, p + len(r))
            segments[row, start:end] = slot + 1
            ends[slot] = end - 1
            start = end
        last.extend(row * s + e for e in ends)
    return PackedGroups(
        tokens=tokens.to(device),
        positions=positions.to(device),
        mask=prompt_once_mask(segments).to(device),
        last_index=torch.tensor(last, dtype=torch.long, device=device),
        group_sizes=tuple(len(g.responses) for g in groups),
    )


def prompt_once_mask(segments: torch.Tensor) -> torch.Tensor:
    """Boolean [b, 1, s, s] from segment ids [b, s] (0 prompt, k > 0 response k, -1 padding):
    query i attends key j iff j <= i and key j is the prompt or in query i's own segment.
    Padding attends padding only, so that no row of the mask is empty."""
    s = segments.shape[1]
    idx = torch.arange(s, device=segments.device)
    causal = idx[None, :] <= idx[:, None]
    same = segments[:, :, None] == segments[:, None, :]
    prompt_key = (segments == PROMPT_SEGMENT)[:, None, :]
    real_query = (segments != PAD_SEGMENT)[:, :, None]
    return (causal & (same | (prompt_key & real_query))).unsqueeze(1)


def _layout_order(n: int, generator: torch.Generator | None) -> list[int]:
    if generator is None:
        return list(range(n))
    return torch.randperm(n, generator=generator).tolist()


def split_to_fit(group: Group, max_len: int) -> list[Group]:
    """``group`` as consecutive groups of its responses, each no longer than ``max_len``."""
    if len(group.prompt) + max(len(r) for r in group.responses) > max_len:
        raise AlignInputError(
            f"a prompt of {len(group.prompt)} tokens and its longest response "
            f"({max(len(r) for r in group.responses)}) exceed the sequence length {max_len}"
        )
    out: list[list[Sequence[int]]] = [[]]
    used = len(group.prompt)
    for r in group.responses:
        if out[-1] and used + len(r) > max_len:
            out.append([])
            used = len(group.prompt)
        out[-1].append(r)
        used += len(r)
    return [Group(group.prompt, rs) for rs in out]
