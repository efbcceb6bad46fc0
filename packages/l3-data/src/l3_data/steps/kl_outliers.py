"""Token-distribution KL-divergence outliers (Llama 3, 3.1.1): documents whose word
distribution is far from the corpus's (walls of rare tokens, encoded blobs, keyword spam).

The corpus distribution ``q`` is counted over hashed word bins across the whole run (collect:
one ``bins``-long count vector per chunk; memory fixed by ``bins``); each document's score is
``KL(p || q)`` in nats, with ``p`` its own bin distribution and ``q`` add-one smoothed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from l3_data.document import Document
from l3_data.steps.base import ChunkContext, GlobalStep, register
from l3_data.steps.filters import words
from l3_data.steps.globals_util import Loader


@register("kl_outliers")
@dataclass(kw_only=True)
class KLOutliers(GlobalStep):
    max_kl: float = 7.0
    bins: int = 1 << 18
    min_words: int = 1

    def _bins(self, doc: Document) -> np.ndarray:
        mask = self.bins - 1
        return np.array([xxhash.xxh3_64_intdigest(w.lower().encode()) & mask
                         for w in words(doc.text)], dtype=np.int64)

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        if self.bins & (self.bins - 1):
            raise ValueError(f"kl_outliers.bins = {self.bins}: must be a power of two")
        counts = np.zeros(self.bins, np.int64)
        for d in docs:
            counts += np.bincount(self._bins(d), minlength=self.bins)
        return {"counts": counts}

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        total = np.zeros(self.bins, np.int64)
        for u in units:
            total += load(u)["counts"]
        state_dir.mkdir(parents=True, exist_ok=True)
        logq = np.log((total + 1) / (total.sum() + self.bins))
        np.save(state_dir / "logq.npy", logq)
        return {"words": int(total.sum())}

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        logq = np.load(state_dir / "logq.npy")
        for doc in docs:
            b = self._bins(doc)
            if len(b) < self.min_words:
                yield doc
                continue
            values, counts = np.unique(b, return_counts=True)
            p = counts / counts.sum()
            kl = float(np.sum(p * (np.log(p) - logq[values])))
            doc.metadata["token_kl"] = round(kl, 4)
            if kl > self.max_kl:
                ctx.exclude(doc, f"{self.type_name}:kl_above_{self.max_kl:g}")
            else:
                yield doc
