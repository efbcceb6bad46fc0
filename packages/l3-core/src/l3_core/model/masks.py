"""Positions and attention masks for packed sequences of several documents."""

from __future__ import annotations

import torch

from l3_core.errors import InputError


def segment_starts(document_ids: torch.Tensor) -> torch.Tensor:
    """Index of the first token of each token's document run, [b, s].

    A document is a maximal run of equal ids, so ids only need to differ between neighbours.
    """
    b, s = document_ids.shape
    idx = torch.arange(s, device=document_ids.device).expand(b, s)
    new = torch.ones_like(document_ids, dtype=torch.bool)
    new[:, 1:] = document_ids[:, 1:] != document_ids[:, :-1]
    return torch.where(new, idx, torch.zeros_like(idx)).cummax(dim=1).values


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """RoPE positions that restart at 0 at each document boundary."""
    s = document_ids.shape[1]
    return torch.arange(s, device=document_ids.device) - segment_starts(document_ids)


def document_causal_mask(document_ids: torch.Tensor) -> torch.Tensor:
    """Boolean [b, 1, s, s]: query i attends key j iff j <= i and both are in the same run."""
    starts = segment_starts(document_ids)
    s = document_ids.shape[1]
    idx = torch.arange(s, device=document_ids.device)
    causal = idx[None, :] <= idx[:, None]
    same = starts[:, :, None] == starts[:, None, :]
    return (causal & same).unsqueeze(1)


def document_ids_from_lengths(
    lengths: list[list[int]], device: torch.device | None = None
) -> torch.Tensor:
    """Document ids [b, s] from per-row document lengths (each row must sum to the same s)."""
    totals = {sum(row) for row in lengths}
    if len(totals) != 1:
        raise InputError(
            f"document lengths must sum to the same sequence length per row, got {sorted(totals)}"
        )
    rows = [torch.repeat_interleave(torch.arange(len(row)), torch.tensor(row)) for row in lengths]
    return torch.stack(rows).to(device)
