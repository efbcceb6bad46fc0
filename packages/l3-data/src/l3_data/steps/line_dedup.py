"""Line-level deduplication the Llama 3 way (section 3.1.1): within each bucket of
``bucket_size`` consecutive documents, remove every line that appears in more than
``max_count`` of them (boilerplate such as navigation menus and cookie warnings).

A line counts once per document. Memory: 8 bytes per distinct line per document of one bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from l3_core.io import atomic_write
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, GlobalStep, register
from l3_data.steps.global_arrays import Loader, save_array
from l3_data.steps.limits import NON_NEGATIVE, POSITIVE, option_limits


def _line_key(line: str) -> str:
    return line.strip()


@register("line_dedup")
@dataclass(kw_only=True)
class LineDedup(GlobalStep):
    limits = option_limits(bucket_size=POSITIVE, max_count=POSITIVE, min_line_chars=NON_NEGATIVE)

    bucket_size: int = 30_000_000
    max_count: int = 6
    min_line_chars: int = 1

    def _hashes(self, doc: Document) -> np.ndarray:
        keys = {_line_key(x) for x in doc.text.split("\n")}
        return np.array(
            [xxhash.xxh3_64_intdigest(k.encode()) for k in keys if len(k) >= self.min_line_chars],
            dtype=np.uint64,
        )

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        parts = [self._hashes(d) for d in docs]
        return {
            "hash": np.concatenate(parts) if parts else np.zeros(0, np.uint64),
            "count": np.array([len(p) for p in parts], dtype=np.int64),
        }

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        starts: dict[str, int] = {}
        pending: list[np.ndarray] = []
        bucket, n_docs, frequent_total = 0, 0, 0

        def flush(b: int) -> int:
            hashes = np.concatenate(pending) if pending else np.zeros(0, np.uint64)
            values, counts = np.unique(hashes, return_counts=True)
            frequent = values[counts > self.max_count]
            save_array(state_dir / f"bucket{b}.npy", frequent)
            pending.clear()
            return len(frequent)

        for u in units:
            data = load(u)
            counts = data["count"]
            offsets = np.concatenate([[0], np.cumsum(counts)])
            starts[u] = n_docs
            i = 0
            while i < len(counts):
                room = (bucket + 1) * self.bucket_size - n_docs
                j = min(len(counts), i + room)
                pending.append(data["hash"][offsets[i] : offsets[j]])
                n_docs += j - i
                i = j
                if n_docs == (bucket + 1) * self.bucket_size:
                    frequent_total += flush(bucket)
                    bucket += 1
        if pending or bucket == 0:
            frequent_total += flush(bucket)
        save_array(state_dir / "starts.npy", np.array([starts[u] for u in units], dtype=np.int64))
        with atomic_write(state_dir / "units.txt", encoding="utf-8") as f:
            f.write("\n".join(units))
        return {"documents": n_docs, "buckets": bucket + 1, "frequent_lines": frequent_total}

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        units = (state_dir / "units.txt").read_text(encoding="utf-8").split("\n")
        start = int(np.load(state_dir / "starts.npy", allow_pickle=False)[units.index(ctx.unit)])
        cache: dict[int, set[int]] = {}
        for k, doc in enumerate(docs):
            b = (start + k) // self.bucket_size
            if b not in cache:
                cache[b] = set(np.load(state_dir / f"bucket{b}.npy", allow_pickle=False).tolist())
            frequent = cache[b]
            lines = doc.text.split("\n")
            kept = [
                x
                for x in lines
                if xxhash.xxh3_64_intdigest(_line_key(x).encode()) not in frequent
                or len(_line_key(x)) < self.min_line_chars
            ]
            removed = len(lines) - len(kept)
            if removed:
                self.stat(ctx, "lines_removed", removed)
                doc.text = "\n".join(kept)
            if doc.text.strip():
                yield doc
            else:
                self.reject(ctx, doc, "empty_after_line_dedup")
