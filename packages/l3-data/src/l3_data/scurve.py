"""The MinHash LSH S-curve: the probability that a pair of documents becomes a candidate, as a
function of its Jaccard similarity, ``1 - (1 - s**rows)**bands``, with the verification
threshold that candidates must then reach."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.errors import ConfigError
from l3_core.io import atomic_write
from l3_data.steps.minhash import candidate_probability


def parse_banding(text: str) -> tuple[int, int]:
    """``"14x8"`` -> (14, 8)."""
    bands, sep, rows = text.partition("x")
    if not (sep and bands.isdigit() and rows.isdigit() and int(bands) and int(rows)):
        raise ConfigError(f"--compare {text!r}: expected BANDSxROWS, e.g. 14x8")
    return int(bands), int(rows)


def similarity_at(probability: float, bands: int, rows: int) -> float:
    """The Jaccard similarity at which a pair becomes a candidate with ``probability``."""
    return float((1.0 - (1.0 - probability) ** (1.0 / bands)) ** (1.0 / rows))


def plot_scurve(
    settings: Sequence[tuple[int, int]], threshold: float, out: str | Path
) -> dict[str, Any]:
    """Draw each ``(bands, rows)`` S-curve and the threshold to ``out`` (PNG)."""
    for b, r in settings:
        if b < 1 or r < 1:
            raise ConfigError(f"bands = {b}, rows = {r}: expected numbers >= 1")
    if not 0 <= threshold <= 1:
        raise ConfigError(f"threshold = {threshold}: expected a number in [0, 1]")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = np.linspace(0, 1, 501)
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for b, r in settings:
        ax.plot(s, candidate_probability(s, b, r), label=f"{b} bands x {r} rows")
    ax.axvline(threshold, color="grey", ls="--", label=f"verification threshold {threshold:g}")
    ax.set_xlabel("Jaccard similarity of the two documents' shingle sets")
    ax.set_ylabel("probability of becoming a candidate pair")
    ax.set_title("MinHash LSH S-curve")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return {"similarity_at_half": [similarity_at(0.5, b, r) for b, r in settings]}
