"""A disk-backed index of a corpus's n-gram hashes, hash-partitioned into P sorted arrays.

Layout of the index directory::

    index.json          what was indexed (n, partitions, tokenizer, corpus fingerprint, counts);
                        written last, so a directory without it is an unfinished build
    runs.json           the build pass finished (its fingerprint and run count)
    runs/p0003-r00012.npy   sorted distinct hashes of partition 3 from chunk 12 of the build
    part-0003.npy       every distinct hash of partition 3, sorted (uint64, no objects)

The build streams the corpus once: hashes are buffered until ``chunk_size`` of them are held,
then deduplicated, split by ``hash % P`` and written as one run per partition. Each partition
is then merged from its runs on its own (by ``workers`` processes at once), so memory is
bounded by the chunk size while streaming and by one partition while merging:

- streaming: about ``48 * chunk_size`` bytes (the buffer, its sorted copy, the partition ids
  and the split), plus the tokenizer;
- merging, per worker: about ``32 * R`` bytes, where R is the sum of the run sizes of the
  largest partition (at most the corpus's distinct n-grams / P times the number of chunks in
  which an n-gram recurs); raise P to lower it.

Every file is written atomically; a rerun reuses a finished index of the same corpus, and an
interrupted one resumes at the merge of the first partition not yet written.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.io import atomic_write, write_json
from l3_data.contamination.ngrams import ngram_hashes
from l3_data.errors import InputFormatError, WorkdirMismatchError

log = logging.getLogger(__name__)

FORMAT = "l3-ngram-index"
VERSION = 1
DEFAULT_PARTITIONS = 64
DEFAULT_CHUNK_SIZE = 1 << 22


@dataclass(frozen=True)
class IndexSpec:
    """What an index holds; two builds with equal specs produce the same index."""

    n: int
    partitions: int
    tokenizer: str
    corpus: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _part_path(root: Path, p: int) -> Path:
    return root / f"part-{p:04d}.npy"


def _run_path(root: Path, p: int, r: int) -> Path:
    return root / "runs" / f"p{p:04d}-r{r:05d}.npy"


def _distinct_sorted(hashes: np.ndarray) -> np.ndarray:
    """The distinct values of ``hashes``, sorted (a sort and a neighbour comparison: several
    times faster than ``np.unique`` on uint64)."""
    out = np.sort(hashes)
    if out.size:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


def _save(path: Path, arr: np.ndarray) -> None:
    with atomic_write(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputFormatError(f"{path}: not an index record: {e}") from None
    if not isinstance(data, dict):
        raise InputFormatError(f"{path}: not an index record (expected a JSON object)")
    return data


class NgramIndex:
    """A finished index, opened for lookups (each partition memory-mapped on first use)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        record = _read_json(self.root / "index.json")
        if record is None or record.get("format") != FORMAT:
            raise InputFormatError(f"{self.root}: not a finished n-gram index (no index.json)")
        self.record = record
        self.n = int(record["n"])
        self.partitions = int(record["partitions"])
        self._parts: dict[int, np.ndarray] = {}

    def partition(self, p: int) -> np.ndarray:
        if p not in self._parts:
            path = _part_path(self.root, p)
            try:
                self._parts[p] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InputFormatError(f"{path}: index partition unreadable: {e}") from None
        return self._parts[p]

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """bool per hash: whether that n-gram occurs in the corpus."""
        found = np.zeros(hashes.size, bool)
        if hashes.size == 0:
            return found
        part = hashes % np.uint64(self.partitions)
        order = np.argsort(part, kind="stable")  # one sort, then a slice per partition
        present, starts = np.unique(part[order], return_index=True)
        for p, lo, hi in zip(present, starts, [*starts[1:], order.size]):
            arr = self.partition(int(p))
            if arr.size == 0:
                continue
            sel = order[lo:hi]
            at = np.searchsorted(arr, hashes[sel])
            found[sel] = arr[np.minimum(at, arr.size - 1)] == hashes[sel]
        return found

    def __len__(self) -> int:
        return int(self.record["distinct_ngrams"])


class _RunWriter:
    """Buffers hashes and writes each full buffer as one sorted run per partition."""

    def __init__(self, root: Path, partitions: int, chunk_size: int) -> None:
        self.root, self.partitions, self.chunk_size = root, partitions, chunk_size
        self.buffer: list[np.ndarray] = []
        self.held = 0
        self.runs = 0

    def add(self, hashes: np.ndarray) -> None:
        if hashes.size:
            self.buffer.append(hashes)
            self.held += hashes.size
            if self.held >= self.chunk_size:
                self.flush()

    def flush(self) -> None:
        if not self.held:
            return
        distinct = _distinct_sorted(np.concatenate(self.buffer))
        self.buffer, self.held = [], 0
        part = distinct % np.uint64(self.partitions)
        order = np.argsort(part, kind="stable")  # stable: each partition's slice stays sorted
        bounds = np.searchsorted(part[order], np.arange(self.partitions + 1))
        for p in range(self.partitions):
            _save(_run_path(self.root, p, self.runs), distinct[order[bounds[p] : bounds[p + 1]]])
        self.runs += 1


def _merge_partition(root: Path, p: int, runs: int) -> int:
    """Merge the runs of partition ``p`` into ``part-p.npy``; return its size."""
    parts = [np.load(_run_path(root, p, r), allow_pickle=False) for r in range(runs)]
    merged = _distinct_sorted(np.concatenate(parts)) if parts else np.zeros(0, np.uint64)
    _save(_part_path(root, p), merged.astype(np.uint64, copy=False))
    return int(merged.size)


def build_index(
    root: str | Path,
    documents: Iterable[np.ndarray],
    spec: IndexSpec,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1,
    rebuild: bool = False,
    stats: Callable[[], dict[str, Any]] | None = None,
) -> NgramIndex:
    """Index the n-grams of ``documents`` under ``root``, or reuse the finished index there.

    ``stats``, called when the corpus has been read, gives extra counts for ``index.json``
    (e.g. the rows that could not be read). An index of a
    different spec in ``root`` is an error unless ``rebuild``.
    """
    root = Path(root)
    wanted = spec.to_json()
    for name in ("index.json", "runs.json"):
        record = _read_json(root / name)
        if record is not None and record.get("spec") != wanted and not rebuild:
            raise WorkdirMismatchError(
                f"{root / name}: index of {record.get('spec')}, not of {wanted}: pass "
                "--rebuild to replace it, or another --index directory"
            )
    done = _read_json(root / "index.json")
    if done is not None and done.get("spec") == wanted and not rebuild:
        log.info("%s: reusing the finished index", root)
        return NgramIndex(root)
    runs_record = _read_json(root / "runs.json")
    if rebuild or runs_record is None or runs_record.get("spec") != wanted:
        runs_record = _stream_runs(root, documents, spec, chunk_size, stats)
    runs = int(runs_record["runs"])
    todo = [p for p in range(spec.partitions) if not _part_path(root, p).is_file()]
    if workers > 1 and len(todo) > 1:
        # spawned, not forked: the parent holds tokenizer threads and the corpus buffers
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
            list(pool.map(_merge_partition, [root] * len(todo), todo, [runs] * len(todo)))
    else:
        for p in todo:
            _merge_partition(root, p, runs)
    sizes = [int(np.load(_part_path(root, p), mmap_mode="r").size) for p in range(spec.partitions)]
    write_json(
        root / "index.json",
        {
            "format": FORMAT,
            "version": VERSION,
            "spec": wanted,
            **wanted,
            "documents": runs_record["documents"],
            "ngrams": runs_record["ngrams"],
            "distinct_ngrams": sum(sizes),
            "largest_partition": max(sizes, default=0),
            "chunk_size": chunk_size,
            **runs_record["stats"],
        },
    )
    shutil.rmtree(root / "runs", ignore_errors=True)
    (root / "runs.json").unlink(missing_ok=True)
    return NgramIndex(root)


def _stream_runs(
    root: Path,
    documents: Iterable[np.ndarray],
    spec: IndexSpec,
    chunk_size: int,
    stats: Callable[[], dict[str, Any]] | None,
) -> dict[str, Any]:
    # A build pass is never resumed half-way: what an interrupted pass left is discarded.
    for stale in [root / "index.json", root / "runs.json", *root.glob("part-*.npy")]:
        stale.unlink(missing_ok=True)
    shutil.rmtree(root / "runs", ignore_errors=True)
    (root / "runs").mkdir(parents=True)
    writer = _RunWriter(root, spec.partitions, chunk_size)
    n_docs = n_grams = 0
    for ids in documents:
        h = ngram_hashes(ids, spec.n)
        writer.add(h)
        n_docs += 1
        n_grams += h.size
    writer.flush()
    record = {
        "spec": spec.to_json(),
        "runs": writer.runs,
        "documents": n_docs,
        "ngrams": n_grams,
        "stats": stats() if stats else {},
    }
    write_json(root / "runs.json", record)
    return record
