"""Hash partitions of what a global step collects, so that its reduce runs one part at a time.

Each chunk splits the rows it collects (a 64-bit key per row, plus columns such as the local
document index) into ``P`` parts by key (``key % P``) and saves each part as its own array of
the chunk's ``.npz`` (``key_3``, ``doc_3``, ...). A part of the reduce then reads only its own
arrays of every chunk, so a worker holds about ``1/P`` of the corpus's rows however many
documents there are, and the ``P`` parts run on different workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from l3_data.errors import WorkdirMismatchError
from l3_data.steps.global_arrays import Loader


def _size(data: dict[str, np.ndarray], unit: str) -> int:
    if "n" not in data:
        raise WorkdirMismatchError(
            f"chunk {unit}: collected by an l3-data without hash partitions; restart the run "
            "(--restart) to collect it again"
        )
    return int(data["n"][0])


def split(keys: np.ndarray, partitions: int, **columns: np.ndarray) -> dict[str, np.ndarray]:
    """``{"key_<p>": ..., "<column>_<p>": ...}`` for every part ``p``: the rows whose key is
    ``p`` modulo ``partitions``, in their original order."""
    part = keys % np.uint64(partitions)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1, dtype=np.uint64))
    out: dict[str, np.ndarray] = {}
    for name, column in {"key": keys, **columns}.items():
        rows = column[order]
        for p in range(partitions):
            out[f"{name}_{p}"] = rows[bounds[p] : bounds[p + 1]]
    return out


def unit_sizes(units: Sequence[str], load: Loader) -> list[int]:
    """The number of documents of each unit (the ``n`` every partitioned collect saves)."""
    return [_size(load(u), u) for u in units]


def iter_part(
    units: Sequence[str], load: Loader, part: int, columns: Sequence[str] = ()
) -> Iterator[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
    """Per unit in corpus order: part ``part``'s keys, their documents' global indices (the
    unit's start plus its ``doc`` column) and the other ``columns``."""
    start = 0
    for u in units:
        data = load(u)
        n = _size(data, u)
        doc = data[f"doc_{part}"].astype(np.int64) + start
        yield data[f"key_{part}"], doc, [data[f"{c}_{part}"] for c in columns]
        start += n


def gather(
    units: Sequence[str], load: Loader, part: int, columns: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Part ``part`` of every unit concatenated (see :func:`iter_part`)."""
    keys: list[np.ndarray] = []
    docs: list[np.ndarray] = []
    cols: list[list[np.ndarray]] = [[] for _ in columns]
    for k, d, c in iter_part(units, load, part, columns):
        keys.append(k)
        docs.append(d)
        for acc, x in zip(cols, c):
            acc.append(x)
    if not keys:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), [np.zeros(0) for _ in columns]
    return np.concatenate(keys), np.concatenate(docs), [np.concatenate(c) for c in cols]
