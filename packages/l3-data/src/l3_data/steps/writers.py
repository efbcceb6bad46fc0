"""Writers: each chunk's documents become one JSONL file (or one token shard) named after the
chunk, written atomically, so a resumed run rewrites a chunk whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l3_core.io import atomic_write
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, Step, register
from l3_data.steps.readers import open_write_binary

_EXT = {"gz": ".jsonl.gz", "zst": ".jsonl.zst", "none": ".jsonl"}


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as JSONL (compressed by ``path``'s extension), atomically; return the count."""
    n = 0
    with atomic_write(path, "wb") as raw, open_write_binary(path, raw) as f:
        for row in rows:
            f.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            n += 1
    return n


@register("write_jsonl")
@dataclass(kw_only=True)
class JsonlWriter(Step):
    output: str
    compression: str = "gz"

    def run(self, docs: Iterable[Document], ctx: ChunkContext) -> Iterator[Document]:
        if self.compression not in _EXT:
            raise ValueError(f"write_jsonl.compression = {self.compression!r}: expected one of {sorted(_EXT)}")
        kept: list[Document] = []
        for doc in docs:
            kept.append(doc)
            yield doc
        write_jsonl(Path(self.output) / f"{ctx.unit}{_EXT[self.compression]}",
                    (d.to_json() for d in kept))
