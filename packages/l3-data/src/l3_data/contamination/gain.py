"""How much contamination helps a model: clean and contaminated subsets compared (the paper's
Table 15, after Singh et al. 2024).

Given each example's contamination and the model's score on it, the examples above the
threshold form the contaminated subset and the rest the clean one. The report gives each
subset's mean score, their difference (contaminated - clean), and the estimated performance
gain of Table 15: the mean over the whole benchmark minus the mean over its clean subset (how
much the reported score owes to contaminated examples). Intervals come from a stratified
bootstrap (each subset resampled with replacement at its own size, seeded).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.jsonl import iter_jsonl
from l3_data.errors import InputFormatError

DEFAULT_BOOTSTRAP = 1000
#: the thresholds of the gain-by-threshold curve (the paper picks one per benchmark)
CURVE_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.0, 1.0, 0.05))


def read_scores(
    path: str | Path, *, id_key: str = "id", score_key: str = "score"
) -> dict[str | int, float]:
    """Example id -> score from a JSONL of ``{"id", "score"}`` rows; a missing, repeated or
    non-numeric value is an :class:`InputFormatError` naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: scores file not found")
    scores: dict[str | int, float] = {}
    for line, row in iter_jsonl(path):
        ident, score = row.get(id_key), row.get(score_key)
        if isinstance(ident, bool) or not isinstance(ident, (str, int)):
            raise InputFormatError(f"{path}:{line}: field {id_key!r} = {ident!r}: expected an id")
        if ident in scores:
            raise InputFormatError(f"{path}:{line}: field {id_key!r} = {ident!r} repeats")
        if (
            isinstance(score, bool)
            or not isinstance(score, (int, float))
            or not math.isfinite(score)
        ):
            raise InputFormatError(
                f"{path}:{line}: field {score_key!r} = {score!r}: expected a finite number"
            )
        scores[ident] = float(score)
    return scores


def _interval(samples: np.ndarray, confidence: float) -> list[float]:
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _bootstrap_means(values: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    # rounds x size indices in blocks, so a large subset never needs the whole matrix at once
    out = np.empty(rounds)
    block = max(1, (1 << 22) // max(values.size, 1))
    for start in range(0, rounds, block):
        stop = min(rounds, start + block)
        picks = rng.integers(0, values.size, size=(stop - start, values.size))
        out[start:stop] = values[picks].mean(axis=1)
    return out


def performance_gain(
    contamination: Sequence[float],
    scores: Sequence[float],
    threshold: float,
    *,
    rounds: int = DEFAULT_BOOTSTRAP,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Clean vs contaminated comparison at ``threshold`` (contaminated: contamination above
    it). Means of an empty subset, and the differences that need it, are ``None``."""
    c = np.asarray(contamination, float)
    s = np.asarray(scores, float)
    dirty = c > threshold
    clean_s, dirty_s = s[~dirty], s[dirty]
    report: dict[str, Any] = {
        "threshold": threshold,
        "examples": int(s.size),
        "clean": int(clean_s.size),
        "contaminated": int(dirty_s.size),
        "contaminated_share": float(dirty.mean()) if s.size else 0.0,
        "mean_all": float(s.mean()) if s.size else None,
        "mean_clean": float(clean_s.mean()) if clean_s.size else None,
        "mean_contaminated": float(dirty_s.mean()) if dirty_s.size else None,
        "difference": None,
        "difference_interval": None,
        "estimated_gain": None,
        "estimated_gain_interval": None,
        "bootstrap_rounds": rounds,
        "confidence": confidence,
    }
    if clean_s.size and dirty_s.size:
        share = dirty_s.size / s.size
        rng = np.random.default_rng(seed)
        diff = _bootstrap_means(dirty_s, rounds, rng) - _bootstrap_means(clean_s, rounds, rng)
        report["difference"] = float(dirty_s.mean() - clean_s.mean())
        report["difference_interval"] = _interval(diff, confidence)
        # full - clean = share * (contaminated - clean): the subsets' sizes are fixed
        report["estimated_gain"] = float(s.mean() - clean_s.mean())
        report["estimated_gain_interval"] = _interval(share * diff, confidence)
    return report


def gain_curve(
    contamination: Sequence[float], scores: Sequence[float], thresholds: Sequence[float]
) -> list[dict[str, Any]]:
    """Contaminated share and estimated gain at each threshold (no bootstrap)."""
    c = np.asarray(contamination, float)
    s = np.asarray(scores, float)
    rows = []
    for t in thresholds:
        clean = s[c <= t]
        gain = float(s.mean() - clean.mean()) if clean.size and s.size else None
        rows.append(
            {"threshold": float(t), "contaminated_share": float((c > t).mean()), "gain": gain}
        )
    return rows


def pair_scores(
    rows: Sequence[Mapping[str, Any]], scores: Mapping[str | int, float]
) -> tuple[list[float], list[float], int]:
    """(contamination, score) of the examples that have a score, and how many had none."""
    contamination, values, missing = [], [], 0
    for row in rows:
        if row["id"] in scores:
            contamination.append(row["contamination"])
            values.append(scores[row["id"]])
        else:
            missing += 1
    return contamination, values, missing


def plot_gain(report: Mapping[str, Any], path: str | Path) -> None:
    """Two panels: each subset's mean score with its interval, and the estimated gain and
    contaminated share against the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from l3_core.io import atomic_write

    g = report["gain"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    names = ["clean", "contaminated", "all"]
    means = [g["mean_clean"], g["mean_contaminated"], g["mean_all"]]
    left.bar(names, [m if m is not None else 0.0 for m in means], color=["C0", "C3", "C7"])
    for i, m in enumerate(means):
        if m is not None:
            left.text(i, m, f"{m:.3f}", ha="center", va="bottom")
    left.set_ylabel("mean score")
    gain, ci = g["estimated_gain"], g["estimated_gain_interval"]
    pct = round(g["confidence"] * 100)
    detail = "n/a" if gain is None else f"{gain:+.3f} ({pct}% CI {ci[0]:+.3f} .. {ci[1]:+.3f})"
    left.set_title(f"threshold {g['threshold']}: estimated gain {detail}", fontsize=9)
    curve = report["curve"]
    ts = [r["threshold"] for r in curve]
    right.plot(ts, [r["gain"] if r["gain"] is not None else np.nan for r in curve], "C3-o",
               label="estimated gain (all - clean)")  # fmt: skip
    right.set_xlabel("contamination threshold")
    right.set_ylabel("estimated gain")
    share = right.twinx()
    share.plot(ts, [r["contaminated_share"] for r in curve], "C0--", label="contaminated share")
    share.set_ylabel("contaminated share")
    right.axvline(g["threshold"], color="k", lw=0.5)
    fig.legend(loc="lower center", ncol=2, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
