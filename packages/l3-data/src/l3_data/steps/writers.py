"""Writers: each chunk's documents become one JSONL file (or one token shard) named after the
chunk, written atomically, so a resumed run rewrites a chunk whole or not at all."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from l3_core.io import atomic_write
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, Step, register
from l3_data.steps.limits import OneOf, option_limits

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

_EXT = {"gz": ".jsonl.gz", "zst": ".jsonl.zst", "none": ".jsonl"}


def open_write_binary(path: Path, raw: IO[bytes]) -> IO[bytes]:
    """A binary writer over ``raw`` compressing by ``path``'s extension; closing it leaves
    ``raw`` open (for :func:`l3_core.io.atomic_write` to sync and rename)."""
    # The ignores: typeshed's io classes (GzipFile, RawIOBase) are not typing.IO, though they
    # are binary writers all the same.
    if path.suffix == ".gz":
        # mtime=0: identical content gives identical bytes, so reruns are comparable.
        return gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=3)  # type: ignore[return-value]
    if path.suffix == ".zst":
        import zstandard

        return zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False)
    return _Unclosable(raw)  # type: ignore[return-value]


class _Unclosable(io.RawIOBase):
    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def writable(self) -> bool:
        return True

    def write(self, b: ReadableBuffer) -> int:
        return self._raw.write(b)


def write_compressed_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL, gzip or zstd compressed by ``path``'s extension (plain otherwise),
    atomically; return the count."""
    n = 0
    with atomic_write(path, "wb") as raw, open_write_binary(path, raw) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            n += 1
    return n


@register("write_jsonl")
@dataclass(kw_only=True)
class JsonlWriter(Step):
    path_fields = ("output",)
    output_fields = ("output",)
    limits = option_limits(compression=OneOf(tuple(_EXT)))

    output: str
    compression: str = "gz"

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        kept: list[Document] = []
        for doc in docs:
            kept.append(doc)
            yield doc
        write_compressed_jsonl(
            Path(self.output) / f"{ctx.unit}{_EXT[self.compression]}", (d.to_json() for d in kept)
        )
