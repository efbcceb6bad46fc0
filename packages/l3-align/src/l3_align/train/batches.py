"""Packed rows in a seeded order, epoch after epoch, resumable from a small state.

Each epoch shuffles the groups with ``(seed, epoch)`` and packs them; ``next_rows`` hands out
rows in order across epochs. The state is two numbers, saved in every checkpoint, so a resumed
run sees exactly the rows the interrupted one would have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from l3_align.data.packing import PackedRows, PackItem, pack


class PackedEpochs:
    def __init__(
        self,
        groups: Sequence[Sequence[PackItem]],
        seq_len: int,
        pad_id: int,
        seed: int,
        shuffle: bool = True,
        where: str = "",
    ) -> None:
        self.groups, self.seq_len, self.pad_id = groups, seq_len, pad_id
        self.seed, self.shuffle, self.where = seed, shuffle, where
        self.epoch, self.row = 0, 0
        self._packed: PackedRows | None = None

    def rows_of_epoch(self, epoch: int) -> PackedRows:
        order = np.arange(len(self.groups))
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(order)
        return pack([self.groups[i] for i in order], self.seq_len, self.pad_id)

    def _current(self) -> PackedRows:
        if self._packed is None:
            self._packed = self.rows_of_epoch(self.epoch)
        return self._packed

    def next_rows(self, n: int) -> PackedRows:
        parts: list[PackedRows] = []
        need = n
        while need:
            cur = self._current()
            take = min(need, cur.n_rows - self.row)
            parts.append(cur.take(slice(self.row, self.row + take)))
            self.row += take
            need -= take
            if self.row == cur.n_rows:
                self.epoch, self.row, self._packed = self.epoch + 1, 0, None
        return concat_rows(parts)

    def all_rows(self) -> PackedRows:
        """Every group once, in the given order (evaluation)."""
        return pack(self.groups, self.seq_len, self.pad_id)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "row": self.row}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.row, self._packed = int(state["epoch"]), int(state["row"]), None


def concat_rows(parts: Sequence[PackedRows]) -> PackedRows:
    if len(parts) == 1:
        return parts[0]
    cat: Callable[[str], np.ndarray] = lambda k: np.concatenate([getattr(p, k) for p in parts])  # noqa: E731
    return PackedRows(
        cat("tokens"),
        cat("labels"),
        cat("positions"),
        cat("doc_ids"),
        cat("group"),
        cat("member"),
        {k: np.concatenate([p.extra[k] for p in parts]) for k in parts[0].extra},
    )
