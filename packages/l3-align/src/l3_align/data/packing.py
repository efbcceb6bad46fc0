"""Packing encoded sequences into fixed-length rows with document ids and shifted masks.

A row holds whole sequences one after another, padded at the end with
``<|finetune_right_pad_id|>``; ``doc_ids`` changes at every boundary, so the model's document
mask keeps attention inside each sequence and positions restart (``positions`` holds them
too, as the parallel trainer wants them). ``labels[i]`` is the next token of the same
sequence and each mask is shifted with it: ``mask[i]`` says whether predicting ``labels[i]``
counts. A sequence's last token has no label.

Sequences that belong together (the chosen and rejected halves of a preference pair) are a
*group*: a group always lands in one row, so a row-wise split of a batch (data parallelism)
never separates them. Groups are placed first-fit in the given order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from l3_align.errors import AlignInputError


@dataclass(frozen=True)
class PackedRows:
    """Per-token arrays [rows, seq_len]; ``extra`` holds the caller's shifted per-token arrays."""

    tokens: np.ndarray  # int64
    labels: np.ndarray  # int64 (pad id where there is no next token)
    positions: np.ndarray  # int64, restart at 0 in each sequence
    doc_ids: np.ndarray  # int64, distinct for neighbouring sequences (padding is its own)
    group: np.ndarray  # int64, row-local index of the token's group, -1 on padding
    member: np.ndarray  # int64, index of the token's sequence within its group, -1 on padding
    extra: dict[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        return int(self.tokens.shape[0])

    def take(self, rows: np.ndarray | slice) -> PackedRows:
        return PackedRows(
            self.tokens[rows],
            self.labels[rows],
            self.positions[rows],
            self.doc_ids[rows],
            self.group[rows],
            self.member[rows],
            {k: v[rows] for k, v in self.extra.items()},
        )

    def array(self, name: str) -> np.ndarray:
        return self.extra[name] if name in self.extra else getattr(self, name)

    def __getattr__(self, name: str) -> np.ndarray:
        # the caller's arrays read as attributes too, as l3-core's batch splitter reads them
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"PackedRows has no array {name!r}")


@dataclass(frozen=True)
class PackItem:
    """One sequence: its tokens and named per-token arrays (shifted as labels are)."""

    tokens: np.ndarray
    arrays: Mapping[str, np.ndarray]


def place_groups(lengths: Sequence[int], seq_len: int) -> list[list[int]]:
    """First-fit: the groups (by index) each row holds, in order."""
    free: list[int] = []
    rows: list[list[int]] = []
    for g, n in enumerate(lengths):
        if n > seq_len:
            raise AlignInputError(f"group {g} has {n} tokens, more than the row length {seq_len}")
        for r, room in enumerate(free):
            if n <= room:
                rows[r].append(g)
                free[r] -= n
                break
        else:
            rows.append([g])
            free.append(seq_len - n)
    return rows


def pack(
    groups: Sequence[Sequence[PackItem]],
    seq_len: int,
    pad_id: int,
    dtypes: Mapping[str, np.dtype] | None = None,
) -> PackedRows:
    """Pack ``groups`` (each a list of sequences kept in one row) into rows of ``seq_len``."""
    if not groups:
        raise AlignInputError("nothing to pack: no rows left after validation")
    names = list(groups[0][0].arrays)
    dtypes = {n: np.dtype((dtypes or {}).get(n, groups[0][0].arrays[n].dtype)) for n in names}
    layout = place_groups([sum(len(s.tokens) for s in g) for g in groups], seq_len)
    n = len(layout)
    tokens = np.full((n, seq_len), pad_id, np.int64)
    labels = np.full((n, seq_len), pad_id, np.int64)
    positions = np.zeros((n, seq_len), np.int64)
    doc_ids = np.zeros((n, seq_len), np.int64)
    group = np.full((n, seq_len), -1, np.int64)
    member = np.full((n, seq_len), -1, np.int64)
    extra = {k: np.zeros((n, seq_len), dtypes[k]) for k in names}
    for r, gs in enumerate(layout):
        at, doc = 0, 0
        for local, g in enumerate(gs):
            for m, item in enumerate(groups[g]):
                k = len(item.tokens)
                sl = slice(at, at + k)
                tokens[r, sl] = item.tokens
                labels[r, at : at + k - 1] = item.tokens[1:]
                positions[r, sl] = np.arange(k)
                doc_ids[r, sl] = doc
                group[r, sl] = local
                member[r, sl] = m
                for name in names:
                    extra[name][r, at : at + k - 1] = item.arrays[name][1:]
                at += k
                doc += 1
        doc_ids[r, at:] = doc
        positions[r, at:] = np.arange(seq_len - at)
    return PackedRows(tokens, labels, positions, doc_ids, group, member, extra)
