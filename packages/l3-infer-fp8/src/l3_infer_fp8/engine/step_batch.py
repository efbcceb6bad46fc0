"""A step's scheduled chunks as the tensors every layer reads, built once per step.

The chunks' tokens are packed into one sequence [tokens]. Attention groups them in two padded
batches, so that no Python loop over requests runs per layer: the decoding requests (one query
each) and the prefill chunks (padded to the longest). Each batch carries the flat cache slots of
its keys [seqs, keys] (the block tables resolved once) and an additive mask (0 where a query may
see a key, -inf elsewhere) already laid out for the grouped-query GEMMs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
        # Index arithmetic in numpy: each op on these small arrays costs a microsecond, where
        # a torch op costs several; one copy to the device at the end.
        lens = np.array([len(c.tokens) for c in chunks])
        starts = np.array([c.start for c in chunks])
        tables = _padded_tables(chunks)
        which = np.repeat(np.arange(len(chunks)), lens)
        offsets = np.cumsum(lens) - lens
        positions = starts[which] + np.arange(lens.sum()) - offsets[which]
        slots = tables[which, positions // block_size] * block_size + positions % block_size
        groups = [
            _attention_batch(members, starts, lens, offsets, tables, block_size, heads)
            for members in (np.flatnonzero(lens == 1), np.flatnonzero(lens > 1))
            if len(members)
        ]
        ends = (np.cumsum(lens) - 1)[np.array([c.sample for c in chunks], dtype=bool)]
        return cls(
            _tensor([t for c in chunks for t in c.tokens], device),
            _tensor(positions, device),
            _tensor(slots, device),
            [g.to(device) for g in groups],
            _tensor(ends, device),
            int((starts + lens).max()),
        )


def _tensor(values, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.asarray(values, dtype=np.int64)).to(device)


def _padded_tables(chunks: list[Chunk]) -> np.ndarray:
    width = max(len(c.block_table) for c in chunks)
    return np.array([c.block_table + [0] * (width - len(c.block_table)) for c in chunks])


def _attention_batch(
    members: np.ndarray,
    starts: np.ndarray,
    lens: np.ndarray,
    offsets: np.ndarray,
    tables: np.ndarray,
    block_size: int,
    heads: tuple[int, int],
) -> AttentionBatch:
    start, n, off = starts[members], lens[members], offsets[members]
    seqs, qlen, klen = len(members), int(n.max()), int((start + n).max())
    q = np.arange(qlen)
    real_q = q[None, :] < n[:, None]  # [seqs, qlen]
    rows = (off[:, None] + q[None, :])[real_q]
    dest = (np.arange(seqs)[:, None] * qlen + q[None, :])[real_q]
    keys = np.arange(klen)
    table = tables[members]
    # Keys past a sequence's end point at its first block (masked, never read as values).
    key_blocks = table[:, np.minimum(keys // block_size, table.shape[1] - 1)]
    key_slots = key_blocks * block_size + keys % block_size
    qpos = start[:, None] + q[None, :]
    visible = keys[None, None, :] <= qpos[:, :, None]
    # A padding query sees key 0 only (an all-masked row would give NaN); its output is dropped.
    visible |= (~real_q)[:, :, None] & (keys == 0)[None, None, :]
    bias = torch.from_numpy(np.where(visible, np.float32(0), np.float32(-np.inf)))
    n_heads, n_kv = heads
    bias = bias[None, :, None].expand(n_kv, seqs, n_heads // n_kv, qlen, klen)
    bias = bias.reshape(n_kv * seqs, n_heads // n_kv * qlen, klen)
    padded = not bool(real_q.all())
    cpu = torch.device("cpu")
    return AttentionBatch(
        _tensor(rows, cpu), _tensor(dest, cpu), _tensor(key_slots, cpu), bias, seqs, qlen, padded
    )
