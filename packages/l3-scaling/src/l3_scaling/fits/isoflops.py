"""IsoFLOP analysis the Llama 3 way (paper section 3.2.1).

For each compute budget C, fit a second-degree polynomial of validation loss against
log10(training tokens); its vertex is the compute-optimal token count D*(C). Then fit
D*(C) = A C^alpha (the paper: alpha ~ 0.53, A ~ 0.29) through the minima by least squares in
log-log space, and the matching parameter-count law N*(C) = A_N C^alpha_N.

Why a window: along an isoFLOP of L = E + A/N^a + B/D^b, loss in log tokens is a sum of two
exponentials, not a parabola. A parabola fitted to a wide sweep places its vertex on the
flatter side, and by an amount that depends on where the sweep sits relative to the minimum,
so the bias differs per budget and leaks into alpha. Near the minimum the curve's shape is the
same for every budget (up to scale), so fitting only the points within ``window_decades`` of
the current vertex (iterated until the window stops changing) removes that leak.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from l3_scaling import checks
from l3_scaling.data import Runs
from l3_scaling.errors import FitError, ParameterError, TableError

log = logging.getLogger(__name__)


class BudgetWarning(UserWarning):
    """A budget's sweep is usable but suspicious (e.g. its lowest loss sits at an edge)."""


@dataclass(frozen=True)
class BudgetFit:
    """The parabola of one budget: loss = c2 x^2 + c1 x + c0 with x = log10(tokens)."""

    C: float
    coeffs: tuple[float, float, float]
    D_opt: float
    N_opt: float
    loss_opt: float
    n_points: int
    used_lines: tuple[int, ...]
    window: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "D_opt": self.D_opt,
            "N_opt": self.N_opt,
            "loss_opt": self.loss_opt,
            "tokens_per_param": self.D_opt / self.N_opt,
            "n_points": self.n_points,
            "n_used": len(self.used_lines),
            "window_tokens": list(self.window),
            "parabola_log10_tokens": list(self.coeffs),
        }


@dataclass(frozen=True)
class PowerLaw:
    """y = A x^alpha fitted by least squares on (log10 x, log10 y), with its covariance."""

    A: float
    alpha: float
    cov: np.ndarray  # of (log10 A, alpha)
    x_mean: float
    sxx: float
    s2: float
    n: int

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray) -> PowerLaw:
        lx, ly = np.log10(x), np.log10(y)
        n = len(lx)
        slope, intercept = np.polyfit(lx, ly, 1)
        resid = ly - (intercept + slope * lx)
        s2 = float(resid @ resid / (n - 2)) if n > 2 else math.nan
        xm = float(lx.mean())
        sxx = float(((lx - xm) ** 2).sum())
        var_slope = s2 / sxx
        var_int = s2 * (1.0 / n + xm**2 / sxx)
        cov_is = -xm * s2 / sxx
        cov = np.array([[var_int, cov_is], [cov_is, var_slope]])
        return cls(10.0**intercept, float(slope), cov, xm, sxx, s2, n)

    def __call__(self, x: Any) -> np.ndarray:
        return self.A * np.asarray(x, float) ** self.alpha

    def _t(self, level: float) -> float:
        return float(stats.t.ppf(0.5 + level / 2, self.n - 2)) if self.n > 2 else math.nan

    def band(self, x: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Confidence band of the fitted line (not of a new observation) at ``x``."""
        lx = np.log10(np.asarray(x, float))
        se = np.sqrt(self.s2 * (1.0 / self.n + (lx - self.x_mean) ** 2 / self.sxx))
        centre = np.log10(self(x))
        t = self._t(level)
        return 10.0 ** (centre - t * se), 10.0 ** (centre + t * se)

    def alpha_interval(self, level: float = 0.95) -> tuple[float, float]:
        h = self._t(level) * math.sqrt(self.cov[1, 1])
        return self.alpha - h, self.alpha + h

    def A_interval(self, level: float = 0.95) -> tuple[float, float]:
        h = self._t(level) * math.sqrt(self.cov[0, 0])
        return self.A * 10.0**-h, self.A * 10.0**h

    def to_dict(self, level: float = 0.95) -> dict[str, Any]:
        return {
            "A": self.A,
            "alpha": self.alpha,
            "alpha_se": math.sqrt(self.cov[1, 1]),
            "alpha_interval": list(self.alpha_interval(level)),
            "A_interval": list(self.A_interval(level)),
            "n_budgets": self.n,
        }


@dataclass(frozen=True)
class IsoFlopFit:
    """Per-budget parabolas, the tokens law D*(C) and the parameters law N*(C)."""

    budgets: list[BudgetFit]
    tokens_law: PowerLaw
    params_law: PowerLaw
    skipped: list[tuple[float, str]] = field(default_factory=list)
    level: float = 0.95

    def extrapolate(self, C: float) -> dict[str, Any]:
        """D* and N* at budget ``C`` with their confidence bands."""
        C = checks.positive(C, "target_flops")
        d_lo, d_hi = self.tokens_law.band(C, self.level)
        n_lo, n_hi = self.params_law.band(C, self.level)
        return {
            "C": C,
            "D_opt": float(self.tokens_law(C)),
            "D_interval": [float(d_lo), float(d_hi)],
            "N_opt": float(self.params_law(C)),
            "N_interval": [float(n_lo), float(n_hi)],
        }

    def to_dict(self, target_flops: float | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "alpha": self.tokens_law.alpha,
            "A": self.tokens_law.A,
            "params_alpha": self.params_law.alpha,
            "params_A": self.params_law.A,
            "level": self.level,
            "tokens_law": self.tokens_law.to_dict(self.level),
            "params_law": self.params_law.to_dict(self.level),
            "budgets": [b.to_dict() for b in self.budgets],
            "skipped_budgets": [{"C": c, "reason": r} for c, r in self.skipped],
        }
        if target_flops is not None:
            out["target"] = self.extrapolate(target_flops)
        return out


def group_budgets(C: np.ndarray, rtol: float = 0.05) -> np.ndarray:
    """Label each run with its budget: sorted C values within ``rtol`` of a group's first
    value share it (planned budgets are rarely hit exactly once steps are rounded)."""
    order = np.argsort(C, kind="stable")
    labels = np.empty(len(C), int)
    group, start = -1, -math.inf
    for i in order:
        if C[i] > start * (1.0 + rtol):
            group, start = group + 1, C[i]
        labels[i] = group
    return labels


def _where(lines: Sequence[int], source: str) -> str:
    return f"{source} lines {', '.join(map(str, lines))}" if source else f"rows {list(lines)}"


def fit_budget(
    C: float,
    N: np.ndarray,
    D: np.ndarray,
    loss: np.ndarray,
    lines: Sequence[int] | np.ndarray | None = None,
    *,
    window_decades: float | None = 0.5,
    min_points: int = 5,
    source: str = "",
) -> BudgetFit:
    """Fit one budget's parabola; ``window_decades=None`` fits all its points (global)."""
    lines = list(range(len(D))) if lines is None else list(lines)
    tag = f"budget C={C:.3g}"
    n = len(D)
    if n < 3:
        raise FitError(
            f"{tag}: {n} run(s) ({_where(lines, source)}); a parabola needs at least 3 token "
            "counts per budget"
        )
    x = np.log10(D)
    if np.unique(x).size < 3:
        raise FitError(f"{tag}: fewer than 3 distinct token counts; a parabola needs 3")
    lo, hi = float(x.min()), float(x.max())
    need = max(3, min(min_points, n))

    def window(centre: float) -> np.ndarray:
        if window_decades is None:
            return np.ones(n, bool)
        sel = np.abs(x - centre) <= window_decades
        if sel.sum() < need:
            sel = np.zeros(n, bool)
            sel[np.argsort(np.abs(x - centre), kind="stable")[:need]] = True
        return sel

    def parabola(sel: np.ndarray) -> tuple[float, float, float]:
        if np.unique(x[sel]).size < 3:
            raise FitError(f"{tag}: fewer than 3 distinct token counts in the fit window")
        c2, c1, c0 = np.polyfit(x[sel], loss[sel], 2)
        i_min = int(np.argmin(loss))
        if c2 <= 0 and x[i_min] in (lo, hi):
            side = (
                "more tokens (smaller models)" if x[i_min] == hi else "fewer tokens (larger models)"
            )
            raise FitError(
                f"{tag}: no interior minimum: the lowest loss is at the "
                f"{'largest' if x[i_min] == hi else 'smallest'} token count (line {lines[i_min]}) "
                f"and the loss is not convex; the sweep must be widened toward {side}"
            )
        if c2 <= 0:
            raise FitError(
                f"{tag}: loss is not convex in log tokens around its lowest point "
                f"({_where(lines, source)}); no minimum to fit: widen or densify the sweep"
            )
        x_new = -c1 / (2 * c2)
        if not lo <= x_new <= hi:
            side = "more tokens (smaller models)" if x_new > hi else "fewer tokens (larger models)"
            raise FitError(
                f"{tag}: no interior minimum: the parabola's minimum is at D={10**x_new:.3g} "
                f"tokens, outside the swept range {10**lo:.3g}..{10**hi:.3g}; the sweep must be "
                f"widened toward {side}"
            )
        return float(c2), float(c1), float(c0)

    # Move the window to the vertex until the window stops changing. With noisy losses it can
    # cycle between a few windows; their union is then fitted once.
    sel = window(float(x[np.argmin(loss)]))
    history: list[bytes] = []
    while True:
        c2, c1, c0 = parabola(sel)
        history.append(sel.tobytes())
        nxt = window(-c1 / (2 * c2))
        key = nxt.tobytes()
        if key == history[-1]:
            break
        if key in history:
            cycle = history[history.index(key) :]
            sel = np.any([np.frombuffer(k, bool) for k in cycle], axis=0)
            c2, c1, c0 = parabola(sel)
            break
        sel = nxt
    x_opt = -c1 / (2 * c2)
    i_min = int(np.argmin(loss))
    if x[i_min] in (lo, hi):
        warnings.warn(
            f"{tag}: the lowest loss is at the {'largest' if x[i_min] == hi else 'smallest'} "
            f"token count (line {lines[i_min]}); the minimum is extrapolated, widen the sweep",
            BudgetWarning,
            stacklevel=2,
        )
    # N* from the runs' own N-D relation near the optimum, so that whatever FLOP accounting
    # produced the table (6ND or with attention) carries over.
    xs, ln = x[sel], np.log10(N[sel])
    if np.all(np.isfinite(ln)):
        slope, icpt = np.polyfit(xs, ln, 1)
        n_opt = 10.0 ** (icpt + slope * x_opt)
    else:
        n_opt = C / (6.0 * 10.0**x_opt)
    used = tuple(int(lines[i]) for i in np.flatnonzero(sel))
    span = (float(10 ** x[sel].min()), float(10 ** x[sel].max()))
    return BudgetFit(
        C=float(C),
        coeffs=(float(c2), float(c1), float(c0)),
        D_opt=float(10.0**x_opt),
        N_opt=float(n_opt),
        loss_opt=float(c0 - c1 * c1 / (4 * c2)),
        n_points=n,
        used_lines=used,
        window=span,
    )


def fit_isoflops(
    runs: Runs,
    *,
    window_decades: float | None = 0.5,
    min_points: int = 5,
    budget_rtol: float = 0.05,
    on_bad_budget: Literal["raise", "skip"] = "raise",
    level: float = 0.95,
) -> IsoFlopFit:
    """Fit every budget of ``runs`` (which needs C, N, D and loss), then the two power laws.

    ``on_bad_budget="skip"`` drops a budget whose fit fails, with a warning naming it, instead
    of raising; the power laws need at least two good budgets either way.
    """
    if runs.C is None:
        raise TableError(f"{runs.source}: the isoFLOP method needs a C (FLOPs) column")
    if window_decades is not None:
        checks.positive(window_decades, "window_decades")
    if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 3:
        raise ParameterError("min_points", min_points, "an integer >= 3 (a parabola needs 3)")
    checks.positive(budget_rtol, "budget_rtol")
    checks.level(level)
    if on_bad_budget not in ("raise", "skip"):
        raise ParameterError("on_bad_budget", on_bad_budget, "'raise' or 'skip'")
    checks.distinct_rows(
        {"C": runs.C, "N": runs.N, "D": runs.D, "loss": runs.loss}, runs.lines, runs.source
    )
    checks.varying(runs.loss, "loss", runs.source)
    labels = group_budgets(runs.C, budget_rtol)
    fits: list[BudgetFit] = []
    skipped: list[tuple[float, str]] = []
    for g in range(labels.max() + 1):
        idx = np.flatnonzero(labels == g)
        # A budget is named by its geometric mean, i.e. the planned value up to rounding.
        group_c = runs.C[idx]
        C = (
            float(group_c[0])
            if np.all(group_c == group_c[0])
            else float(np.exp(np.log(group_c).mean()))
        )
        try:
            fits.append(
                fit_budget(
                    C,
                    runs.N[idx],
                    runs.D[idx],
                    runs.loss[idx],
                    runs.lines[idx],
                    window_decades=window_decades,
                    min_points=min_points,
                    source=runs.source,
                )
            )
        except FitError as e:
            if on_bad_budget == "raise":
                raise
            warnings.warn(f"skipping {e}", BudgetWarning, stacklevel=2)
            skipped.append((C, str(e)))
    if len(fits) < 2:
        raise FitError(
            f"{runs.source}: {len(fits)} usable budget(s); the power law needs at least 2"
            + (f" (skipped: {'; '.join(r for _, r in skipped)})" if skipped else "")
        )
    if len(fits) == 2:
        warnings.warn(
            "only 2 budgets: the power law passes through both, so it has no confidence interval",
            BudgetWarning,
            stacklevel=2,
        )
    Cs = np.array([f.C for f in fits])
    tokens = PowerLaw.fit(Cs, np.array([f.D_opt for f in fits]))
    params = PowerLaw.fit(Cs, np.array([f.N_opt for f in fits]))
    log.info(
        "isoFLOP tokens law: D* = %.4g C^%.4f over %d budgets", tokens.A, tokens.alpha, len(fits)
    )
    return IsoFlopFit(fits, tokens, params, skipped, level)


def runs_from_arrays(
    C: Sequence[float] | np.ndarray,
    N: Sequence[float] | np.ndarray,
    D: Sequence[float] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
) -> Runs:
    """A :class:`Runs` table from arrays (rows are numbered from 0 in messages)."""
    arrays = [np.asarray(v, float) for v in (C, N, D, loss)]
    for name, a in zip(("C", "N", "D", "loss"), arrays):
        bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))
        if bad.size:
            raise TableError(
                f"{name} must be finite and positive; row {int(bad[0])} has {a[bad[0]]}"
            )
    return Runs(
        N=arrays[1],
        D=arrays[2],
        loss=arrays[3],
        C=arrays[0],
        lines=np.arange(len(arrays[0])),
        source="",
    )
