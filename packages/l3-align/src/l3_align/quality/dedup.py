"""Semantic dedup (paper 4.2.3): cluster by embedding cosine similarity, keep the best of each
cluster by quality x difficulty.

Rows are visited from the highest quality x difficulty down; a row is kept unless its cosine
similarity to an already kept row reaches ``threshold``, so each cluster keeps its best row.
"""

from __future__ import annotations

import numpy as np

from l3_align.errors import AlignConfigError


def semantic_dedup(
    embeddings: np.ndarray,
    quality: np.ndarray,
    difficulty: np.ndarray,
    threshold: float = 0.9,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices in input order, for every row the index of the kept row it fell to)."""
    if not -1.0 <= threshold <= 1.0:
        raise AlignConfigError(f"dedup.threshold = {threshold!r} must be a cosine in [-1, 1]")
    n = len(embeddings)
    if not (len(quality) == len(difficulty) == n):
        raise AlignConfigError("embeddings, quality and difficulty must have one entry per row")
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    order = np.argsort(-(np.asarray(quality) * np.asarray(difficulty)), kind="stable")
    owner = np.full(n, -1, dtype=np.int64)
    kept: list[int] = []
    for i in order:
        if kept:
            sims = e[kept] @ e[i]
            j = int(np.argmax(sims))
            if sims[j] >= threshold:
                owner[i] = kept[j]
                continue
        kept.append(int(i))
        owner[i] = i
    return np.sort(np.array(kept, dtype=np.int64)), owner
