"""Packed training sequences from token shards: a deterministic, resumable, weighted stream.

* Validation documents come from their own shard directory (``data.val_path``; the built-in
  corpus has a validation split) or else are held out of the training shards by a fixed,
  seed-independent permutation.
* Each source's training documents are visited epoch by epoch, in a permutation seeded by
  ``(seed, source, epoch)``.
* Sources are interleaved by smooth weighted round-robin: after ``n`` documents, source ``s``
  has supplied ``n * w_s / sum(w)`` documents to within one, with no randomness to replay.
* Documents are concatenated into rows of ``seq_len + 1`` tokens with a document id per token;
  a document that does not fit continues at the start of the next row. Labels that would
  cross a document boundary are masked out of the loss, so a packed row scores exactly the
  same tokens as its documents would unpacked.

The whole state of the stream is a small JSON-able dict (:meth:`PackedStream.state_dict`), saved
in every checkpoint, so a resumed run reads exactly the rows an uninterrupted run would.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from l3_core.errors import ConfigError, ShardError
from l3_core.shards import ShardDataset

if TYPE_CHECKING:
    from l3_core.run_config import DataConfig

log = logging.getLogger(__name__)
_VAL_SEED = 20240723  # fixed: the validation set must not change with the training seed


def open_packed_stream(data: DataConfig, seed: int, vocab_size: int) -> PackedStream:
    """The packed stream of the ``[data]`` table: shards checked against the tokenizer and
    vocabulary, and the validation split (``val_path``, the built-in corpus's own, or held out)."""
    path = resolve_data_path(data.path)
    expect = None
    if data.tokenizer:
        from l3_core.tokenizer import Tokenizer

        expect = Tokenizer.from_file(data.tokenizer).fingerprint()
    dataset = ShardDataset(path, expect_tokenizer=expect, expect_vocab_size=vocab_size)
    val_path = data.val_path or (
        resolve_data_path(data.path, "val") if data.path == "builtin:stdlib" else None
    )
    val = (
        ShardDataset(
            val_path, expect_tokenizer=dataset.manifest["tokenizer"], expect_vocab_size=vocab_size
        )
        if val_path
        else None
    )
    return PackedStream(dataset, seed, data.weights, data.val_fraction, val)


def resolve_data_path(path: str, split: str = "train") -> Path:
    """A shard directory, or ``builtin:stdlib`` for the corpus built from Python's stdlib."""
    if path == "builtin:stdlib":
        from l3_core.corpus import stdlib_shards

        return Path(stdlib_shards(split=split))
    if path.startswith("builtin:"):
        raise ConfigError(f"data.path = {path!r}: the only built-in corpus is 'builtin:stdlib'")
    return Path(path)


@dataclass
class Batch:
    """Rows of a batch: ``tokens``/``labels``/``doc_ids``/``loss_mask``/``positions`` [n, seq]."""

    tokens: np.ndarray
    labels: np.ndarray
    doc_ids: np.ndarray
    loss_mask: np.ndarray
    positions: np.ndarray

    def rows(self, sl: slice) -> Batch:
        return Batch(*(getattr(self, f)[sl] for f in self.__dataclass_fields__))


def make_batch(rows: np.ndarray, docs: np.ndarray) -> Batch:
    """Inputs, shifted labels, per-token document ids, loss mask and restarting positions."""
    tokens, labels = rows[:, :-1], rows[:, 1:]
    d_in, d_out = docs[:, :-1], docs[:, 1:]
    n, s = tokens.shape
    idx = np.broadcast_to(np.arange(s), (n, s))
    new = np.ones((n, s), dtype=bool)
    new[:, 1:] = d_in[:, 1:] != d_in[:, :-1]
    starts = np.maximum.accumulate(np.where(new, idx, 0), axis=1)
    return Batch(
        tokens.astype(np.int64),
        labels.astype(np.int64),
        d_in.astype(np.int64),
        (d_in == d_out).astype(np.float32),
        (idx - starts).astype(np.int64),
    )


class PackedStream:
    """The training stream; see the module docstring."""

    def __init__(
        self,
        dataset: ShardDataset,
        seed: int,
        weights: dict[str, float],
        val_fraction: float,
        val_dataset: ShardDataset | None = None,
    ) -> None:
        self.dataset = dataset
        self.val_dataset = val_dataset or dataset
        self.seed = seed
        index = dataset.document_index()
        lengths = np.concatenate([np.diff(np.asarray(s.offsets)) for s in dataset.shards])
        names = [s.info.sources for s in dataset.shards]
        src_names = np.array([names[sh][int(dataset.shards[sh].sources[d])] for sh, d in index])
        keep = lengths > 0
        index, src_names = index[keep], src_names[keep]
        if len(index) < 2:
            raise ShardError(
                f"{dataset.directory}: needs at least 2 non-empty documents, has {len(index)}"
            )
        order = np.random.default_rng(_VAL_SEED).permutation(len(index))
        if val_dataset is None:
            n_val = min(max(1, round(val_fraction * len(index))), len(index) - 1)
            self.val_docs = index[np.sort(order[:n_val])]
        else:
            n_val = 0
            self.val_docs = val_dataset.document_index()
        train = np.sort(order[n_val:])
        self.sources = sorted(set(src_names[train].tolist()))
        self.by_source = {s: index[train][src_names[train] == s] for s in self.sources}
        self.natural = {
            s: float(lengths[keep][train][src_names[train] == s].sum()) for s in self.sources
        }
        self._perms: dict[str, tuple[int, np.ndarray]] = {}  # source -> (epoch, permutation)
        self.draws = 0
        self.credits = {s: 0.0 for s in self.sources}
        self.cursor = {s: [0, 0] for s in self.sources}
        self.carry: list[int] | None = None  # [shard, doc, offset] of a split document
        self.set_weights(weights)

    @property
    def tokenizer(self) -> str:
        """Fingerprint of the tokenizer the shards were written with."""
        return str(self.dataset.manifest["tokenizer"])

    @property
    def where(self) -> str:
        return str(self.dataset.directory)

    # -- mix ---------------------------------------------------------------------------------

    def set_weights(self, weights: dict[str, float], phase: str = "main") -> None:
        """Use ``weights`` per source (empty: proportional to each source's tokens)."""
        self.phase = phase
        unknown = sorted(set(weights) - set(self.sources))
        if unknown:
            raise ConfigError(
                f"data weights name unknown sources {unknown}; the data has {self.sources}"
            )
        w = {s: float(weights.get(s, 0.0)) for s in self.sources} if weights else dict(self.natural)
        if sum(w.values()) <= 0:
            raise ConfigError(f"data weights {weights} give no source a positive weight")
        self.weights = w

    def _next_source(self) -> str:
        total = sum(self.weights.values())
        for s, w in self.weights.items():
            self.credits[s] += w
        best = max((s for s in self.sources if self.weights[s] > 0), key=lambda s: self.credits[s])
        self.credits[best] -= total
        return best

    def _next_document(self) -> tuple[int, int]:
        source = self._next_source()
        epoch, pos = self.cursor[source]
        docs = self.by_source[source]
        if self._perms.get(source, (None,))[0] != epoch:
            rng = np.random.default_rng([self.seed, self.sources.index(source), epoch])
            self._perms[source] = (epoch, rng.permutation(len(docs)))
        shard, doc = docs[self._perms[source][1][pos]]
        pos += 1
        self.cursor[source] = [epoch + 1, 0] if pos == len(docs) else [epoch, pos]
        self.draws += 1
        return int(shard), int(doc)

    # -- rows --------------------------------------------------------------------------------

    def next_rows(self, n: int, seq_len: int) -> Batch:
        rows = np.empty((n, seq_len + 1), dtype=np.int64)
        docs = np.empty((n, seq_len + 1), dtype=np.int64)
        for r in range(n):
            fill, d = 0, 0
            while fill < seq_len + 1:
                if self.carry is None:
                    shard, doc = self._next_document()
                    offset = 0
                else:
                    shard, doc, offset = self.carry
                tokens = self.dataset.shards[shard].document(doc)
                take = min(len(tokens) - offset, seq_len + 1 - fill)
                rows[r, fill : fill + take] = tokens[offset : offset + take]
                docs[r, fill : fill + take] = d
                fill += take
                d += 1
                self.carry = [shard, doc, offset + take] if offset + take < len(tokens) else None
        return make_batch(rows, docs)

    def state_dict(self) -> dict[str, Any]:
        return {
            "draws": self.draws,
            "credits": dict(self.credits),
            "cursor": {s: list(c) for s, c in self.cursor.items()},
            "carry": self.carry,
            "weights": dict(self.weights),
            "phase": self.phase,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if sorted(state["cursor"]) != self.sources:
            raise ShardError(
                f"checkpoint data position names sources {sorted(state['cursor'])}, but the data "
                f"has {self.sources}: resume with the same data"
            )
        self.draws = int(state["draws"])
        self.credits = {s: float(v) for s, v in state["credits"].items()}
        self.cursor = {s: [int(a), int(b)] for s, (a, b) in state["cursor"].items()}
        self.carry = list(state["carry"]) if state["carry"] is not None else None
        self.weights = {s: float(v) for s, v in state["weights"].items()}
        self.phase = state["phase"]

    # -- validation ----------------------------------------------------------------------------

    def validation_rows(self, n: int, seq_len: int) -> Batch:
        """The first ``n`` packed rows of the validation documents (cycled if too few)."""
        rows = np.empty((n, seq_len + 1), dtype=np.int64)
        docs = np.empty((n, seq_len + 1), dtype=np.int64)
        i, offset = 0, 0
        for r in range(n):
            fill, d = 0, 0
            while fill < seq_len + 1:
                shard, doc = self.val_docs[i % len(self.val_docs)]
                tokens = self.val_dataset.shards[int(shard)].document(int(doc))
                if len(tokens) == 0:
                    i += 1
                    continue
                take = min(len(tokens) - offset, seq_len + 1 - fill)
                rows[r, fill : fill + take] = tokens[offset : offset + take]
                docs[r, fill : fill + take] = d
                fill, d = fill + take, d + 1
                offset += take
                if offset == len(tokens):
                    i, offset = i + 1, 0
        return make_batch(rows, docs)
