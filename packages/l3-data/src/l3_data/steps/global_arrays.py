"""Arrays of global steps: concatenating per-chunk arrays, per-chunk keep masks, first occurrences."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from l3_core.io import atomic_write

Loader = Callable[[str], dict[str, np.ndarray]]


def concat(units: list[str], load: Loader, key: str) -> tuple[np.ndarray, list[int]]:
    """Concatenate array ``key`` of every unit in order; return it and each unit's length."""
    parts = [np.asarray(load(u)[key]) for u in units]
    sizes = [len(p) for p in parts]
    if not parts:
        return np.zeros(0), []
    return np.concatenate(parts), sizes


def save_array(path: Path, array: np.ndarray) -> None:
    """Write one ``.npy`` atomically: a reduce killed mid-write leaves no half-written state
    for the next start to trust (its temporary is cleared then)."""
    with atomic_write(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def save_masks(state_dir: Path, units: list[str], sizes: list[int], keep: np.ndarray) -> None:
    """Split a global boolean mask into one ``<unit>.keep.npy`` per unit."""
    start = 0
    for unit, n in zip(units, sizes):
        save_array(state_dir / f"{unit}.keep.npy", keep[start : start + n])
        start += n


def keep_first(keys: np.ndarray) -> np.ndarray:
    """True for the first occurrence (in array order) of each distinct row of ``keys``.

    ``keys`` is ``[n]`` or ``[n, k]`` of integers; sorting is stable, so ties keep order.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, bool)
    cols = keys.reshape(n, -1)
    order = np.lexsort(tuple(cols[:, j] for j in reversed(range(cols.shape[1]))))
    sorted_keys = cols[order]
    new = np.ones(n, bool)
    new[1:] = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    keep = np.zeros(n, bool)
    keep[order[new]] = True
    return keep


def cluster_members(labels: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the clusters with more than one document, in order of first member."""
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    cuts = np.flatnonzero(np.diff(sl)) + 1
    groups = [g for g in np.split(order, cuts) if len(g) > 1]
    return sorted(groups, key=lambda g: int(g[0]))


def write_clusters(
    path: Path, members: list[np.ndarray], units: list[str], sizes: list[int], load: Loader
) -> None:
    """Write each cluster as a JSON list of document ids, loading ids only of member units."""
    bounds = np.cumsum([0, *sizes])
    ids: dict[int, np.ndarray] = {}
    with atomic_write(path, encoding="utf-8") as f:
        for g in members:
            names = []
            for gi in g:
                u = int(np.searchsorted(bounds, gi, side="right") - 1)
                if u not in ids:
                    ids[u] = load(units[u])["id"]
                names.append(str(ids[u][gi - bounds[u]]))
            f.write(json.dumps(names, ensure_ascii=False) + "\n")
