"""Packed alignment rows on l3-core's trainer: the batch source and the objective base.

:class:`PackedSource` is a :class:`~l3_core.train.objective.BatchSource` over
:class:`~l3_align.train.batches.PackedEpochs`: global batches in a seeded order, epoch after
epoch, resumable from the two numbers of its state; the validation rows are the held-out
file's packed rows, padded with empty rows to whole global batches (an empty row adds nothing
to any sum or count). :class:`PackedObjective` splits a batch into this rank's micro-batches of
the named per-token arrays; SFT, DPO and the reward model subclass it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from l3_align.data.packing import PackedRows, PackItem, pack
from l3_align.errors import AlignConfigError
from l3_align.train.batches import PackedEpochs, concat_rows
from l3_core.train.objective import BatchSource, Layout, Objective, split_rows_and_columns

if TYPE_CHECKING:
    from l3_core.args import ModelArgs
    from l3_core.run_config import RunConfig


class ValidationRows:
    """Held-out rows in global batches (the trainer evaluates ``rows(slice)`` in turn)."""

    def __init__(self, packed: PackedRows) -> None:
        self.packed = packed

    def rows(self, index: slice) -> PackedRows:
        return self.packed.take(index)


def packed_source(
    groups: Mapping[str, Sequence[Sequence[PackItem]]],
    seq_len: int,
    pad_id: int,
    seed: int,
    batch_rows: int,
    tokenizer: str,
    where: str,
) -> PackedSource:
    """Training epochs over ``groups["train"]`` and validation rows packed from
    ``groups["eval"]``, or, with no held-out file, the first global batch of the training rows."""
    train = PackedEpochs(groups["train"], seq_len, pad_id, seed, where=where)
    if "eval" in groups:
        validation = pack(groups["eval"], seq_len, pad_id)
    else:
        validation = pack(groups["train"], seq_len, pad_id).take(slice(0, batch_rows))
    return PackedSource(train, validation, tokenizer, where)


class PackedSource:
    """The trainer's batch source over packed rows (an l3-core ``BatchSource`` by its shape)."""

    def __init__(
        self,
        train: PackedEpochs,
        validation: PackedRows,
        tokenizer: str,
        where: str,
    ) -> None:
        self.train, self.validation = train, validation
        self.tokenizer, self.where, self.phase = tokenizer, where, "main"

    def next_rows(self, n: int, seq_len: int) -> PackedRows:
        self._check_seq_len(seq_len)
        return self.train.next_rows(n)

    def validation_rows(self, n: int, seq_len: int) -> ValidationRows:
        self._check_seq_len(seq_len)
        return ValidationRows(pad_rows(self.validation, n, self.train.pad_id))

    def set_weights(self, weights: dict[str, float], phase: str = "main") -> None:
        if weights:
            raise AlignConfigError(
                f"{self.where}: alignment rows have no sources to weight (got {weights})"
            )
        self.phase = phase

    def state_dict(self) -> dict[str, Any]:
        return self.train.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train.load_state_dict(state)

    def _check_seq_len(self, seq_len: int) -> None:
        if seq_len != self.train.seq_len:
            raise AlignConfigError(
                f"{self.where}: rows are packed to {self.train.seq_len} tokens, the trainer asks "
                f"for {seq_len} (sequence-length ramps do not apply to alignment)"
            )


def pad_rows(rows: PackedRows, n: int, pad_id: int) -> PackedRows:
    """``rows`` cut or padded with empty rows (group -1 everywhere) to ``n`` rows."""
    if rows.n_rows >= n:
        return rows.take(slice(0, n))
    empty = rows.take(slice(0, 1))
    blank = PackedRows(
        np.full_like(empty.tokens, pad_id),
        np.full_like(empty.labels, pad_id),
        np.zeros_like(empty.positions),
        np.zeros_like(empty.doc_ids),
        np.full_like(empty.group, -1),
        np.full_like(empty.member, -1),
        {k: np.zeros_like(v) for k, v in empty.extra.items()},
    )
    return concat_rows([rows, *[blank] * (n - rows.n_rows)])


DataFactory = Callable[["RunConfig"], PackedSource]


class PackedObjective(Objective):
    """An objective over :class:`PackedSource` rows; ``columns`` are the per-token arrays a
    micro-batch carries. ``data`` builds the source once the process group is up (so that,
    e.g., rank 0 alone computes a cache the others then read)."""

    columns: ClassVar[tuple[str, ...]] = ()
    #: whether the loss is a sum over tokens (context-parallel columns may then be split);
    #: per-sequence losses need each sequence whole on one rank
    token_sums: ClassVar[bool] = False

    def __init__(self, data: DataFactory | None = None) -> None:
        self._data = data  # None: the objective computes losses only (no trainer run)

    def open_data(self, cfg: RunConfig, args: ModelArgs) -> BatchSource:
        if self._data is None:
            raise AlignConfigError(f"{type(self).__name__} was built without data to train on")
        if cfg.parallel.cp > 1 and not self.token_sums:
            raise AlignConfigError(
                f"parallel.cp = {cfg.parallel.cp}: {type(self).__name__} scores whole "
                "sequences, which context parallelism would split; use parallel.cp = 1"
            )
        return self._data(cfg)

    def micro_batches(self, batch: PackedRows, layout: Layout) -> list[dict[str, torch.Tensor]]:
        return split_rows_and_columns(batch, layout, columns=self.columns)
