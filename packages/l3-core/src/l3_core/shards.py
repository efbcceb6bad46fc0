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
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

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
        self.manifest = _read_manifest(path)
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
        for key in ("n_tokens", "n_docs"):
            total = sum(getattr(sh.info, key) for sh in self.shards)
            if total != self.manifest[key]:
                raise ShardError(
                    f"{path}: {key} = {self.manifest[key]}, but its shards hold {total}"
                )
        self.sources = sorted({s for sh in self.shards for s in sh.info.sources})

    def _open(self, name: str) -> Shard:
        meta_path = self.directory / f"{name}.meta.json"
        info = _read_meta(meta_path)
        for key in ("tokenizer", "vocab_size"):
            if getattr(info, key) != self.manifest[key]:
                raise ShardError(
                    f"{meta_path}: {key} = {getattr(info, key)!r}, but {MANIFEST} says "
                    f"{self.manifest[key]!r}"
                )
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
        offsets = _load_index(self.directory / f"{name}.offsets.npy", (info.n_docs + 1,))
        sources = _load_index(self.directory / f"{name}.sources.npy", (info.n_docs,))
        _check_offsets(self.directory / f"{name}.offsets.npy", offsets, info.n_tokens)
        if sources.size and int(sources.max()) >= len(info.sources):
            raise ShardError(
                f"{self.directory / name}.sources.npy: source index {int(sources.max())} "
                f"but {name}.meta.json names {len(info.sources)} sources"
            )
        _check_token_ids(tok_path, tokens, info.vocab_size)
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


def _read_json(path: Path) -> Any:
    """The JSON value in ``path``; a missing, binary, non-UTF-8 or malformed file is a
    :class:`ShardError` naming it."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{path}: missing (incomplete shard)") from None
    except UnicodeDecodeError as e:
        raise ShardError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ShardError(f"{path}: not valid JSON: {e}") from None
    except OSError as e:
        raise ShardError(f"{path}: cannot read ({e.strerror})") from None


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_name(v: Any) -> bool:
    # a shard name is a file-name prefix inside the dataset directory, never a path
    return (
        isinstance(v, str) and bool(v) and "/" not in v and "\\" not in v and v not in (".", "..")
    )


def _is_count_table(v: Any) -> bool:
    return isinstance(v, dict) and all(_is_count(n) for n in v.values())


#: key -> (check, what it must be); the manifest's and each meta file's required fields
_MANIFEST_FIELDS = {
    "tokenizer": (lambda v: isinstance(v, str), "a string"),
    "vocab_size": (lambda v: _is_count(v) and v > 0, "a positive integer"),
    "n_tokens": (_is_count, "an integer >= 0"),
    "n_docs": (_is_count, "an integer >= 0"),
    "shards": (lambda v: isinstance(v, list) and all(map(_is_name, v)), "a list of shard names"),
}
_META_FIELDS = {
    "name": (_is_name, "a shard name"),
    "n_tokens": (_is_count, "an integer >= 0"),
    "n_docs": (_is_count, "an integer >= 0"),
    "dtype": (lambda v: v in ("<u2", "<u4"), "'<u2' or '<u4'"),
    "vocab_size": (lambda v: _is_count(v) and v > 0, "a positive integer"),
    "tokenizer": (lambda v: isinstance(v, str), "a string"),
    "sources": (
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "a list of source names",
    ),
    "tokens_per_source": (_is_count_table, "a table of counts"),
    "docs_per_source": (_is_count_table, "a table of counts"),
}


def _check_fields(path: Path, data: Any, fields: dict, required: Iterable[str]) -> None:
    if not isinstance(data, dict):
        raise ShardError(f"{path}: expected a JSON object, got {type(data).__name__}")
    for key in required:
        if key not in data:
            raise ShardError(f"{path}: missing key {key!r}")
    for key, (ok, what) in fields.items():
        if key in data and not ok(data[key]):
            raise ShardError(f"{path}: {key} = {data[key]!r}: expected {what}")


def _read_manifest(path: Path) -> dict[str, Any]:
    data = _read_json(path)
    _check_fields(path, data, _MANIFEST_FIELDS, ("format", *_MANIFEST_FIELDS))
    if data["format"] != FORMAT:
        raise ShardError(f"{path}: format is {data['format']!r}, expected {FORMAT!r}")
    return data


def _read_meta(path: Path) -> ShardInfo:
    data = _read_json(path)
    known = {f.name for f in fields(ShardInfo)}
    _check_fields(path, data, _META_FIELDS, ("name", "n_tokens", "n_docs", "dtype", "vocab_size"))
    unknown = sorted(set(data) - known)
    if unknown:
        raise ShardError(f"{path}: invalid shard meta: unknown keys {unknown}")
    try:
        return ShardInfo(**data)
    except TypeError as e:
        raise ShardError(f"{path}: invalid shard meta: {e}") from None


# what np.load raises on a damaged .npy file (its header is a Python literal, parsed by ast)
_NPY_ERRORS = (OSError, ValueError, EOFError, TypeError, SyntaxError, tokenize.TokenError)


def _load_index(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """An integer .npy document index of ``shape`` (memory-mapped, never unpickled)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise ShardError(f"{path}: shard file missing") from None
    except _NPY_ERRORS as e:
        raise ShardError(f"{path}: document index unreadable: {e!r}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iu":
        raise ShardError(f"{path}: expected an integer array, got {getattr(arr, 'dtype', arr)}")
    if arr.shape != shape:
        raise ShardError(
            f"{path}: shape {arr.shape} does not match the meta file (expected {shape})"
        )
    return arr


def _check_offsets(path: Path, offsets: np.ndarray, n_tokens: int) -> None:
    if int(offsets[0]) != 0 or int(offsets[-1]) != n_tokens:
        raise ShardError(
            f"{path}: offsets run from {int(offsets[0])} to {int(offsets[-1])}, expected 0 to "
            f"n_tokens = {n_tokens}"
        )
    steps = np.diff(offsets.astype(np.int64))
    if steps.size and int(steps.min()) < 0:
        d = int(np.argmax(steps < 0))
        raise ShardError(
            f"{path}: offsets out of order: document {d + 1} starts at {int(offsets[d + 1])}, "
            f"before document {d} (at {int(offsets[d])})"
        )


def _check_token_ids(path: Path, tokens: np.ndarray, vocab_size: int) -> None:
    # Once per shard at open: one vectorised pass over the mapped file (the ids are
    # unsigned, so only the maximum can be out of range).
    if tokens.size and int(tokens.max()) >= vocab_size:
        at = int(np.argmax(tokens >= vocab_size))
        raise ShardError(
            f"{path}: token id {int(tokens[at])} at position {at} is outside the vocabulary "
            f"[0, {vocab_size})"
        )
