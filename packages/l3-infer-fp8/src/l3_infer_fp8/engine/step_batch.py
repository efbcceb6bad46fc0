"""A step's scheduled chunks as the tensors every layer reads, built once per step.

The chunks' tokens are packed into one sequence [tokens]. Attention groups them in two padded
batches, so that no Python loop over requests runs per layer: the decoding requests (one query
each) and the prefill chunks (padded to the longest). Each batch carries the flat cache slots of
its keys [seqs, keys] (the block tables resolved once) and an additive mask (0 where a query may
see a key, -inf elsewhere) already laid out for the grouped-query GEMMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Chunk:
    """``tokens`` of one request at positions ``start, start + 1, ...``; ``sample``: return the
    logits after the last of them."""

    tokens: list[int]
    start: int
    block_table: list[int]
    sample: bool


@dataclass
class AttentionBatch:
    """Queries of some chunks padded to [seqs, qlen] and the keys each may see."""

    rows: torch.Tensor  # the batch's tokens in the packed step [n]
    dest: torch.Tensor  # where each lands in the padded [seqs * qlen] queries [n]
    key_slots: torch.Tensor  # flat cache slots of each sequence's keys [seqs, klen]
    # [kv_heads * seqs, group * qlen, klen]: 0 = attend, -inf = masked, laid out for the
    # grouped-query GEMMs (the query heads of one key head stacked)
    bias: torch.Tensor
    seqs: int
    qlen: int
    padded: bool  # whether dest is not the identity (some chunk is shorter than qlen)

    def to(self, device: torch.device) -> AttentionBatch:
        return AttentionBatch(
            self.rows.to(device),
            self.dest.to(device),
            self.key_slots.to(device),
            self.bias.to(device),
            self.seqs,
            self.qlen,
            self.padded,
        )


@dataclass
class StepBatch:
    ids: torch.Tensor  # [tokens]
    positions: torch.Tensor  # [tokens]
    slots: torch.Tensor  # the tokens' flat cache slots [tokens]
    groups: list[AttentionBatch]
    sample_rows: torch.Tensor  # the packed rows whose logits are returned
    bound: int  # 1 + the largest position

    @classmethod
    def build(
        cls, chunks: list[Chunk], block_size: int, heads: tuple[int, int], device: torch.device
    ) -> StepBatch:
        """``heads``: (query heads, key/value heads) of the model."""
        lengths = [len(c.tokens) for c in chunks]
        starts = torch.tensor([c.start for c in chunks])
        lens = torch.tensor(lengths)
        tables = _padded_tables(chunks)
        which = torch.repeat_interleave(torch.arange(len(chunks)), lens)
        offsets = torch.cumsum(lens, 0) - lens
        positions = starts[which] + torch.arange(int(lens.sum())) - offsets[which]
        slots = tables[which, positions // block_size] * block_size + positions % block_size
        decode = [i for i, n in enumerate(lengths) if n == 1]
        prefill = [i for i, n in enumerate(lengths) if n > 1]
        groups = [
            _attention_batch(members, starts, lens, offsets, tables, block_size, heads)
            for members in (decode, prefill)
            if members
        ]
        ends = (torch.cumsum(lens, 0) - 1)[torch.tensor([c.sample for c in chunks])]
        return cls(
            torch.tensor([t for c in chunks for t in c.tokens], device=device),
            positions.to(device),
            slots.to(device),
            [g.to(device) for g in groups],
            ends.to(device),
            int((starts + lens).max()),
        )


def _padded_tables(chunks: list[Chunk]) -> torch.Tensor:
    width = max(len(c.block_table) for c in chunks)
    return torch.tensor([c.block_table + [0] * (width - len(c.block_table)) for c in chunks])


def _attention_batch(
    members: list[int],
    starts: torch.Tensor,
    lens: torch.Tensor,
    offsets: torch.Tensor,
    tables: torch.Tensor,
    block_size: int,
    heads: tuple[int, int],
) -> AttentionBatch:
    idx = torch.tensor(members)
    start, n, off = starts[idx], lens[idx], offsets[idx]
    qlen, klen = int(n.max()), int((start + n).max())
    q = torch.arange(qlen)
    real_q = q[None, :] < n[:, None]  # [seqs, qlen]
    rows = (off[:, None] + q[None, :])[real_q]
    dest = (torch.arange(len(members))[:, None] * qlen + q[None, :])[real_q]
    keys = torch.arange(klen)
    table = tables[idx]
    # Keys past a sequence's end point at its first block (masked, never read as values).
    key_blocks = table[:, (keys // block_size).clamp(max=table.shape[1] - 1)]
    key_slots = key_blocks * block_size + keys % block_size
    qpos = start[:, None] + q[None, :]
    visible = keys[None, None, :] <= qpos[:, :, None]
    # A padding query sees key 0 only (an all-masked row would give NaN); its output is dropped.
    visible |= (~real_q)[:, :, None] & (keys == 0)[None, None, :]
    bias = torch.zeros(visible.shape).masked_fill_(~visible, float("-inf"))
    n_heads, n_kv = heads
    seqs = len(members)
    bias = bias[None, :, None].expand(n_kv, seqs, n_heads // n_kv, qlen, klen)
    bias = bias.reshape(n_kv * seqs, n_heads // n_kv * qlen, klen)
    return AttentionBatch(rows, dest, key_slots, bias, seqs, qlen, bool((~real_q).any()))
