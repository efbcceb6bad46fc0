"""Token-distribution KL-divergence outliers (Llama 3, 3.1.1): documents whose word
distribution is far from the corpus's (walls of rare tokens, encoded blobs, keyword spam).

The corpus distribution ``q`` is counted over hashed word bins across the whole run (collect:
one ``bins``-long count vector per chunk; memory fixed by ``bins``); each document's score is
``KL(p || q)`` in nats, with ``p`` its own bin distribution and ``q`` add-one smoothed.

A document is an outlier when its score exceeds ``max_kl`` if set, else the robust bound
``median + z * 1.4826 * MAD`` of the scores of a sample (``sample_per_chunk`` documents of
each chunk), so the threshold follows the corpus rather than a constant tuned elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from l3_core.io import write_json
from l3_data.document import Document
from l3_data.steps.base import ChunkContext, GlobalStep, register
from l3_data.steps.filters import words
from l3_data.steps.global_arrays import Loader, save_array
from l3_data.steps.limits import NON_NEGATIVE, POSITIVE, PowerOfTwo, Range, option_limits


def kl_divergence(doc_bins: np.ndarray, logq: np.ndarray) -> float:
    values, counts = np.unique(doc_bins, return_counts=True)
    p = counts / counts.sum()
    return float(np.sum(p * (np.log(p) - logq[values])))


@register("kl_outliers")
@dataclass(kw_only=True)
class KLOutliers(GlobalStep):
    limits = option_limits(
        max_kl=NON_NEGATIVE,
        z=Range(0, low_open=True),
        bins=PowerOfTwo(),
        min_words=NON_NEGATIVE,
        sample_per_chunk=POSITIVE,
    )

    max_kl: float | None = None
    z: float = 6.0
    bins: int = 1 << 18
    min_words: int = 20
    sample_per_chunk: int = 64

    def _bins(self, doc: Document) -> np.ndarray:
        mask = self.bins - 1
        return np.array(
            [xxhash.xxh3_64_intdigest(w.lower().encode()) & mask for w in words(doc.text)],
            dtype=np.int64,
        )

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        counts = np.zeros(self.bins, np.int64)
        sample: list[np.ndarray] = []
        for d in docs:
            b = self._bins(d)
            counts += np.bincount(b, minlength=self.bins)
            if len(sample) < self.sample_per_chunk and len(b) >= self.min_words:
                sample.append(b)
        return {
            "counts": counts,
            "sample": np.concatenate(sample) if sample else np.zeros(0, np.int64),
            "sample_len": np.array([len(s) for s in sample], dtype=np.int64),
        }

    def reduce(self, units: list[str], load: Loader, state_dir: Path) -> dict[str, Any]:
        total = np.zeros(self.bins, np.int64)
        for u in units:
            total += load(u)["counts"]
        logq = np.log((total + 1) / (total.sum() + self.bins))
        scores = []
        for u in units:
            data = load(u)
            for part in np.split(data["sample"], np.cumsum(data["sample_len"])[:-1]):
                if len(part):
                    scores.append(kl_divergence(part, logq))
        if self.max_kl is not None:
            threshold = self.max_kl
        elif scores:
            med = float(np.median(scores))
            mad = float(np.median(np.abs(np.array(scores) - med)))
            threshold = med + self.z * 1.4826 * max(mad, 1e-3)
        else:
            threshold = float("inf")
        save_array(state_dir / "logq.npy", logq)
        write_json(state_dir / "threshold.json", threshold)
        return {
            "words": int(total.sum()),
            "sampled": len(scores),
            "sample_median_kl": round(float(np.median(scores)), 4) if scores else None,
            "threshold": round(threshold, 4),
        }

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        logq = np.load(state_dir / "logq.npy", allow_pickle=False)
        threshold = json.loads((state_dir / "threshold.json").read_text(encoding="utf-8"))
        for doc in docs:
            b = self._bins(doc)
            if len(b) < self.min_words:
                yield doc
                continue
            kl = kl_divergence(b, logq)
            doc.metadata["token_kl"] = round(kl, 4)
            if kl > threshold:
                self.reject(ctx, doc, "kl_outlier")
            else:
                yield doc
