"""Line-level deduplication the Llama 3 way (section 3.1.1): within each bucket of
``bucket_size`` consecutive documents, remove every line that appears in more than
``max_count`` of them (boilerplate such as navigation menus and cookie warnings).

A line counts once per document. The counting is hash-partitioned (:class:`PartitionedStep`):
each chunk saves its line hashes in ``partitions`` parts by hash, and a part counts its hashes
one bucket at a time, so a worker holds the distinct lines of one bucket's documents divided
by ``partitions``: 47 bytes each at most on 1M documents (the hash, its document, its bucket
and numpy's sort; ``benchmarks/bench_data_dedup_scale.py``).
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
from l3_data.steps.base import ChunkContext, PartitionedStep, register
from l3_data.steps.global_arrays import Loader, save_array
from l3_data.steps.limits import NON_NEGATIVE, POSITIVE, option_limits
from l3_data.steps.partitions import iter_part, split, unit_sizes


def _line_key(line: str) -> str:
    return line.strip()


def _frequent(hashes: list[np.ndarray], bucket: int, max_count: int) -> np.ndarray:
    """``[k, 2]`` (bucket, hash) of the hashes seen more than ``max_count`` times."""
    values, counts = np.unique(np.concatenate(hashes), return_counts=True)
    frequent = values[counts > max_count]
    return np.stack([np.full(len(frequent), bucket, np.uint64), frequent], 1)


@register("line_dedup")
@dataclass(kw_only=True)
class LineDedup(PartitionedStep):
    limits = option_limits(
        bucket_size=POSITIVE, max_count=POSITIVE, min_line_chars=NON_NEGATIVE, partitions=POSITIVE
    )

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
        hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        doc = np.repeat(np.arange(len(docs), dtype=np.uint32), [len(p) for p in parts])
        return {"n": np.array([len(docs)]), **split(hashes, self.partitions, doc=doc)}

    def reduce_partition(
        self, part: int, units: list[str], load: Loader, state_dir: Path
    ) -> dict[str, Any]:
        """Count part ``part``'s line hashes bucket by bucket (buckets follow corpus order, so
        one bucket's hashes are held at a time); save the frequent ones."""
        found: list[np.ndarray] = []
        pending: list[np.ndarray] = []
        current, held, largest, entries = 0, 0, 0, 0
        for keys, docs, _ in iter_part(units, load, part):
            entries += len(keys)
            buckets = docs // self.bucket_size
            for b in np.unique(buckets).tolist():
                if b != current:
                    if pending:
                        found.append(_frequent(pending, current, self.max_count))
                    pending, current, held = [], b, 0
                pending.append(keys[buckets == b])
                held += len(pending[-1])
                largest = max(largest, held)
        if pending:
            found.append(_frequent(pending, current, self.max_count))
        frequent = np.concatenate(found) if found else np.zeros((0, 2), np.uint64)
        save_array(state_dir / f"frequent{part:04d}.npy", frequent)
        return {"entries": entries, "largest_bucket_entries": largest}

    def merge(
        self, units: list[str], load: Loader, state_dir: Path, parts: list[dict[str, Any]]
    ) -> dict[str, Any]:
        sizes = unit_sizes(units, load)
        n_docs = sum(sizes)
        n_buckets = max(1, -(-n_docs // self.bucket_size))
        frequent = np.concatenate(
            [np.load(state_dir / f"frequent{p:04d}.npy") for p in range(self.partitions)]
        )
        for b in range(n_buckets):
            save_array(state_dir / f"bucket{b}.npy", np.sort(frequent[frequent[:, 0] == b, 1]))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        save_array(state_dir / "starts.npy", starts[: len(units)])
        with atomic_write(state_dir / "units.txt", encoding="utf-8") as f:
            f.write("\n".join(units))
        return {
            "documents": n_docs,
            "buckets": n_buckets,
            "frequent_lines": len(frequent),
            "partitions": self.partitions,
            "largest_part_bucket_entries": max(
                (p["largest_bucket_entries"] for p in parts), default=0
            ),
        }

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
