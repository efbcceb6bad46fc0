"""The token-shard format: what l3-data writes and the trainer reads.

A dataset is a directory of shards. Shard ``NAME`` is four files::

    NAME.tokens.bin   token ids, little-endian uint16 (vocab <= 65536) or uint32, concatenated
    NAME.offsets.npy  int64 [n_docs + 1]: document d is tokens[offsets[d]:offsets[d + 1]]
    NAME.sources.npy  uint16 [n_docs]: index of each document's source in ``sources``
    NAME.meta.json    counts, dtype, source names and the tokenizer fingerprint

Each file is written atomically and ``NAME.meta.json`` last, so a shard without its meta file
is incomplete and is ignored (a crashed writer leaves nothing half-read). ``manifest.json``
indexes the complete shards with totals per source; it is rebuilt from the meta files by
:func:`write_manifest`, so shards from many workers can be written independently.
Documents carry their own ``<|begin_of_text|>``/``<|end_of_text|>`` ids if the writer added
them; boundaries come from the offsets, never from special ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from l3_core.errors import ShardError
from l3_core.io import atomic_write, write_json

FORMAT = "l3-token-shards"
VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ShardInfo:
    name: str
    n_tokens: int
    n_docs: int
    dtype: str
    vocab_size: int
    tokenizer: str
    sources: list[str]
    tokens_per_source: dict[str, int] = field(default_factory=dict)
    docs_per_source: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT
    version: int = VERSION


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def write_shard(
    directory: str | Path,
    name: str,
    docs: Iterable[tuple[Sequence[int] | np.ndarray, str]],
    *,
    vocab_size: int,
    tokenizer: str,
) -> ShardInfo:
    """Write one complete shard of ``(token_ids, source)`` documents; return its info.

    Token ids outside ``[0, vocab_size)`` are an error, not a silent wrap-around.
    """
    directory = Path(directory)
    dtype = token_dtype(vocab_size)
    sources: list[str] = []
    source_idx: dict[str, int] = {}
    chunks: list[np.ndarray] = []
    offsets = [0]
    doc_sources: list[int] = []
    tok_per: dict[str, int] = {}
    doc_per: dict[str, int] = {}
    for i, (ids, source) in enumerate(docs):
        arr = np.asarray(ids, dtype=np.int64)
        if arr.ndim != 1:
            raise ShardError(f"shard {name}: document {i} is not a 1-D list of token ids")
        bad = arr[(arr < 0) | (arr >= vocab_size)]
        if bad.size:
            raise ShardError(
                f"shard {name}: document {i} has token id {int(bad[0])} outside [0, {vocab_size})"
            )
        if source not in source_idx:
            source_idx[source] = len(sources)
            sources.append(source)
        chunks.append(arr.astype(dtype))
        offsets.append(offsets[-1] + arr.size)
        doc_sources.append(source_idx[source])
        tok_per[source] = tok_per.get(source, 0) + int(arr.size)
        doc_per[source] = doc_per.get(source, 0) + 1
    if len(sources) > 2**16:
        raise ShardError(f"shard {name}: more than 65536 sources")
    tokens = np.concatenate(chunks) if chunks else np.zeros(0, dtype)
    with atomic_write(directory / f"{name}.tokens.bin", "wb") as f:
        f.write(tokens.tobytes())
    with atomic_write(directory / f"{name}.offsets.npy", "wb") as f:
        np.save(f, np.asarray(offsets, dtype=np.int64))
    with atomic_write(directory / f"{name}.sources.npy", "wb") as f:
        np.save(f, np.asarray(doc_sources, dtype=np.uint16))
    info = ShardInfo(
        name=name,
        n_tokens=int(tokens.size),
        n_docs=len(doc_sources),
        dtype=dtype.str,
        vocab_size=vocab_size,
        tokenizer=tokenizer,
        sources=sources,
        tokens_per_source=tok_per,
        docs_per_source=doc_per,
    )
    write_json(directory / f"{name}.meta.json", asdict(info))
    return info


def write_manifest(directory: str | Path) -> dict:
    """Index the complete shards of ``directory`` into ``manifest.json`` (atomically)."""
    directory = Path(directory)
    infos = [_read_meta(p) for p in sorted(directory.glob("*.meta.json"))]
    if not infos:
        raise ShardError(f"{directory}: no complete shards (no *.meta.json files)")
    fingerprints = {i.tokenizer for i in infos}
    if len(fingerprints) > 1:
        raise ShardError(
            f"{directory}: shards were written by different tokenizers: {sorted(fingerprints)}"
        )
    totals_tok: dict[str, int] = {}
    totals_doc: dict[str, int] = {}
    for info in infos:
        for s, n in info.tokens_per_source.items():
            totals_tok[s] = totals_tok.get(s, 0) + n
        for s, n in info.docs_per_source.items():
            totals_doc[s] = totals_doc.get(s, 0) + n
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": infos[0].tokenizer,
        "vocab_size": infos[0].vocab_size,
        "n_tokens": sum(i.n_tokens for i in infos),
        "n_docs": sum(i.n_docs for i in infos),
        "tokens_per_source": totals_tok,
        "docs_per_source": totals_doc,
        "shards": [i.name for i in infos],
    }
    write_json(directory / MANIFEST, manifest)
    return manifest


@dataclass
class Shard:
    """A memory-mapped shard."""

    info: ShardInfo
    tokens: np.ndarray
    offsets: np.ndarray
    sources: np.ndarray

    def document(self, d: int) -> np.ndarray:
        return self.tokens[self.offsets[d] : self.offsets[d + 1]]

    def source_of(self, d: int) -> str:
        return self.info.sources[int(self.sources[d])]


class ShardDataset:
    """All shards of a dataset directory, validated and memory-mapped."""

    def __init__(
        self,
        directory: str | Path,
        expect_tokenizer: str | None = None,
        expect_vocab_size: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        path = self.directory / MANIFEST
        if not path.is_file():
            raise ShardError(
                f"{path}: manifest not found (is {self.directory} a token-shard dataset?)"
            )
        try:
            self.manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ShardError(f"{path}: not valid JSON: {e}") from None
        if self.manifest.get("format") != FORMAT:
            raise ShardError(
                f"{path}: format is {self.manifest.get('format')!r}, expected {FORMAT!r}"
            )
        tok = self.manifest["tokenizer"]
        if expect_tokenizer is not None and tok != expect_tokenizer:
            raise ShardError(
                f"{path}: shards were written with tokenizer {tok!r}, but the model uses "
                f"{expect_tokenizer!r}"
            )
        if expect_vocab_size is not None and self.manifest["vocab_size"] > expect_vocab_size:
            raise ShardError(
                f"{path}: shard vocabulary {self.manifest['vocab_size']} exceeds the model's "
                f"vocab_size {expect_vocab_size}"
            )
        self.shards = [self._open(name) for name in self.manifest["shards"]]
        self.sources = sorted({s for sh in self.shards for s in sh.info.sources})

    def _open(self, name: str) -> Shard:
        info = _read_meta(self.directory / f"{name}.meta.json")
        tok_path = self.directory / f"{name}.tokens.bin"
        if not tok_path.is_file():
            raise ShardError(f"{tok_path}: shard file missing")
        itemsize = np.dtype(info.dtype).itemsize
        size = tok_path.stat().st_size
        if size != info.n_tokens * itemsize:
            raise ShardError(
                f"{tok_path}: truncated or corrupt: {size} bytes, expected "
                f"{info.n_tokens * itemsize} ({info.n_tokens} tokens of {info.dtype})"
            )
        tokens = (
            np.memmap(tok_path, dtype=info.dtype, mode="r")
            if info.n_tokens
            else np.zeros(0, info.dtype)
        )
        try:
            offsets = np.load(self.directory / f"{name}.offsets.npy", mmap_mode="r")
            sources = np.load(self.directory / f"{name}.sources.npy", mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ShardError(f"{self.directory / name}: document index unreadable: {e}") from None
        if offsets.shape != (info.n_docs + 1,) or int(offsets[-1]) != info.n_tokens:
            raise ShardError(
                f"{self.directory / name}.offsets.npy: does not match {name}.meta.json"
            )
        if sources.shape != (info.n_docs,):
            raise ShardError(
                f"{self.directory / name}.sources.npy: does not match {name}.meta.json"
            )
        return Shard(info, tokens, offsets, sources)

    @property
    def n_tokens(self) -> int:
        return int(self.manifest["n_tokens"])

    @property
    def n_docs(self) -> int:
        return int(self.manifest["n_docs"])

    def documents(self) -> Iterator[tuple[np.ndarray, str]]:
        """Every document in shard order, with its source name."""
        for shard in self.shards:
            for d in range(shard.info.n_docs):
                yield shard.document(d), shard.source_of(d)

    def document_index(self) -> np.ndarray:
        """[n_docs, 2] int64 array of (shard index, document index), in storage order."""
        parts = [
            np.stack([np.full(s.info.n_docs, i), np.arange(s.info.n_docs)], axis=1)
            for i, s in enumerate(self.shards)
        ]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, 2), np.int64)


def _read_meta(path: Path) -> ShardInfo:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ShardInfo(**data)
    except FileNotFoundError:
        raise ShardError(f"{path}: shard meta file missing (incomplete shard)") from None
    except (json.JSONDecodeError, TypeError) as e:
        raise ShardError(f"{path}: invalid shard meta: {e}") from None
