"""The token sequences of a corpus: a JSONL file of documents (tokenized here) or a token-shard
directory (``l3_core.shards``, read as its own ids), with a fingerprint of what was read."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l3_core.errors import ShardError
from l3_core.jsonl import Exclusions, iter_jsonl
from l3_core.shards import MANIFEST, ShardDataset
from l3_core.tokenizer import Tokenizer
from l3_data.errors import InputFormatError

#: documents tokenized per call of the tokenizer (its batch encoder uses threads)
TOKENIZE_BATCH = 256


@dataclass
class Corpus:
    """A corpus to index: ``path`` is a JSONL file or a token-shard directory."""

    path: Path
    tokenizer: Tokenizer
    text_key: str = "text"
    excluded: Exclusions = field(default_factory=Exclusions)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.is_shards:
            self._check_shard_tokenizer()
        elif not self.path.is_file():
            kind = "a directory without manifest.json" if self.path.is_dir() else "not found"
            raise InputFormatError(
                f"{self.path}: corpus {kind}: expected a JSONL file of documents or a "
                "token-shard directory"
            )

    @property
    def is_shards(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def _check_shard_tokenizer(self) -> None:
        # The benchmark is tokenized with ``tokenizer``: its ids mean something in the
        # shards only if the shards were written by the same one.
        shards = _open_shards(self.path)
        written_by = shards.manifest["tokenizer"]
        if written_by != self.tokenizer.fingerprint():
            raise InputFormatError(
                f"{self.path / MANIFEST}: shards were written with tokenizer {written_by!r}, "
                f"but the benchmark would be tokenized with {self.tokenizer.fingerprint()!r}: "
                "pass --tokenizer with the shards' tokenizer file"
            )

    def fingerprint(self) -> str:
        """Changes when the corpus files change (path, size and modification time)."""
        files = (
            sorted(self.path.glob("*.json")) + sorted(self.path.glob("*.tokens.bin"))
            if self.is_shards
            else [self.path]
        )
        stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        record = {"files": stats, "tokenizer": self.tokenizer.fingerprint(), "key": self.text_key}
        return hashlib.sha256(json.dumps(record).encode()).hexdigest()[:16]

    def documents(self) -> Iterator[np.ndarray]:
        """Each document's token ids, in corpus order; unreadable JSONL rows go to
        :attr:`excluded`."""
        if self.is_shards:
            for ids, _source in _open_shards(self.path).documents():
                yield np.asarray(ids)
            return
        batch: list[str] = []
        for line, row in iter_jsonl(self.path, on_bad_row=self.excluded.add):
            text = row.get(self.text_key)
            if not isinstance(text, str):
                self.excluded.reject(self.path, line, f"no string {self.text_key!r} field")
                continue
            batch.append(text)
            if len(batch) >= TOKENIZE_BATCH:
                yield from self._encode(batch)
                batch = []
        yield from self._encode(batch)

    def _encode(self, texts: list[str]) -> Iterator[np.ndarray]:
        if texts:
            for ids in self.tokenizer.encode_batch(texts, bos=False, eos=False):
                yield np.asarray(ids, np.int64)


def _open_shards(path: Path) -> ShardDataset:
    try:
        return ShardDataset(path)
    except ShardError as e:
        raise InputFormatError(str(e)) from None
