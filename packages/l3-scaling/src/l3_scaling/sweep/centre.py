"""The centring pass: where each budget's sizes go, from a cheap first pass.

A first pass trains a few sizes per budget over a wide range around the prior optimum. Per
budget, a parabola of loss in log10 N through its runs gives a vertex (clamped to the sizes
tried: a vertex outside says only "beyond this end"); a line through (log10 C, log10 vertex)
then gives every budget's centre, so one noisy budget does not misplace its own sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from l3_scaling.errors import FitError


def budget_vertex(N: Sequence[float], loss: Sequence[float]) -> float:
    """The loss-minimising N of one budget: the vertex of a parabola in log10 N, clamped to
    the range of ``N``; the best run's N when the parabola opens downward."""
    x, y = np.log10(np.asarray(N, float)), np.asarray(loss, float)
    if len(np.unique(x)) < 3:
        raise FitError(f"a budget's vertex needs 3 distinct sizes, got {len(np.unique(x))}")
    a, b, _ = np.polyfit(x, y, 2)
    if a <= 0:
        return float(10 ** x[np.argmin(y)])
    return float(10 ** np.clip(-b / (2 * a), x.min(), x.max()))


def centres_from_runs(
    C: Sequence[float], N: Sequence[float], loss: Sequence[float], budgets: Sequence[float]
) -> dict[float, float]:
    """The centre (parameters) for each of ``budgets`` from first-pass runs (C, N, loss): the
    line through the per-budget vertices in log-log, evaluated at each budget."""
    C_arr, N_arr, y = (np.asarray(v, float) for v in (C, N, loss))
    first = sorted(set(C_arr.tolist()))
    if len(first) < 2:
        raise FitError(f"centring needs first-pass runs at 2 or more budgets, got {len(first)}")
    vertices = [budget_vertex(N_arr[C_arr == c], y[C_arr == c]) for c in first]
    slope, intercept = np.polyfit(np.log10(first), np.log10(vertices), 1)
    return {float(b): float(10 ** (intercept + slope * np.log10(b))) for b in budgets}


def centres_table(centres: Mapping[float, float]) -> list[dict[str, float]]:
    """``centres`` as JSON rows (budget, N)."""
    return [{"C": c, "N_centre": n} for c, n in sorted(centres.items())]
