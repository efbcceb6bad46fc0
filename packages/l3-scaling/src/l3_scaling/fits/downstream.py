"""Two-stage downstream prediction (Llama 3 paper, section 3.2.1, Figure 4).

Stage 1: the normalised negative log-likelihood of the correct answer on a benchmark, for
compute-optimal models, as a power law of training compute: NLL(C) = A C^alpha (alpha < 0).
Stage 2: accuracy as a sigmoid of that NLL, anchored on a model family that reaches higher
accuracies (the paper uses Llama 2 models):
``acc(nll) = chance + (top - chance) / (1 + exp(k (nll - x0)))``.
Composed, they forecast accuracy at a budget; a joint bootstrap (each stage's points resampled
independently) gives the interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from l3_scaling import checks
from l3_scaling.data import read_columns
from l3_scaling.errors import FitError, ParameterError, TableError
from l3_scaling.fits.isoflops import PowerLaw


@dataclass(frozen=True)
class NllLaw:
    """Stage 1: NLL(C) = A C^alpha through compute-optimal models' (C, nll) points."""

    C: np.ndarray
    nll: np.ndarray
    law: PowerLaw

    @property
    def A(self) -> float:
        return self.law.A

    @property
    def alpha(self) -> float:
        return self.law.alpha

    def __call__(self, C: Any) -> np.ndarray:
        return self.law(C)


def _sigmoid(x: np.ndarray, k: float, x0: float, chance: float, top: float) -> np.ndarray:
    return chance + (top - chance) / (1.0 + np.exp(np.clip(k * (x - x0), -500, 500)))


@dataclass(frozen=True)
class AccuracySigmoid:
    """Stage 2: accuracy = chance + (top - chance) / (1 + exp(k (nll - x0)))."""

    nll: np.ndarray
    accuracy: np.ndarray
    k: float
    x0: float
    chance: float
    top: float

    def __call__(self, nll: Any) -> np.ndarray:
        return _sigmoid(np.asarray(nll, float), self.k, self.x0, self.chance, self.top)


def fit_nll_law(C: np.ndarray, nll: np.ndarray) -> NllLaw:
    C, nll = np.asarray(C, float), np.asarray(nll, float)
    if len(C) < 3:
        raise FitError(f"stage 1 needs at least 3 (C, nll) points, got {len(C)}")
    return NllLaw(C, nll, PowerLaw.fit(C, nll))


def fit_sigmoid(
    nll: np.ndarray, accuracy: np.ndarray, chance: float = 0.25, top: float = 1.0
) -> AccuracySigmoid:
    nll, accuracy = np.asarray(nll, float), np.asarray(accuracy, float)
    if len(nll) < 3:
        raise FitError(f"stage 2 needs at least 3 (nll, accuracy) points, got {len(nll)}")
    if np.any((accuracy < 0) | (accuracy > 1)):
        raise TableError("accuracies must lie in [0, 1]")
    span = float(np.ptp(nll)) or 1.0
    p0 = (4.0 / span, float(np.median(nll)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptimizeWarning)
        try:
            (k, x0), _ = curve_fit(
                lambda x, k, x0: _sigmoid(x, k, x0, chance, top),
                nll,
                accuracy,
                p0=p0,
                maxfev=10_000,
            )
        except (RuntimeError, OptimizeWarning) as e:
            raise FitError(f"stage 2 sigmoid fit did not converge: {e}") from None
    return AccuracySigmoid(nll, accuracy, float(k), float(x0), chance, top)


@dataclass(frozen=True)
class DownstreamForecast:
    """The composed forecast at budget C, with bootstrap intervals."""

    C: float
    nll: float
    nll_interval: tuple[float, float]
    accuracy: float
    accuracy_interval: tuple[float, float]
    nll_law: NllLaw
    sigmoid: AccuracySigmoid
    n_bootstrap: int
    n_failed: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "nll": self.nll,
            "nll_interval": list(self.nll_interval),
            "accuracy": self.accuracy,
            "accuracy_interval": list(self.accuracy_interval),
            "stage1": {"A": self.nll_law.A, "alpha": self.nll_law.alpha},
            "stage2": {
                "k": self.sigmoid.k,
                "x0": self.sigmoid.x0,
                "chance": self.sigmoid.chance,
                "top": self.sigmoid.top,
            },
            "n_bootstrap": self.n_bootstrap,
            "n_failed_resamples": self.n_failed,
        }


def fit_downstream(
    nll_points: tuple[np.ndarray, np.ndarray],
    family_points: tuple[np.ndarray, np.ndarray],
    target_flops: float,
    *,
    chance: float = 0.25,
    top: float = 1.0,
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> DownstreamForecast:
    """Fit both stages on ``(C, nll)`` and ``(nll, accuracy)`` points; forecast at ``target_flops``."""
    target_flops = checks.positive(target_flops, "target_flops")
    checks.level(level)
    if checks.non_negative_int(n_bootstrap, "n_bootstrap") == 0:
        raise ParameterError(
            "n_bootstrap", n_bootstrap, "an integer >= 1 (the interval is a bootstrap)"
        )
    C, nll = (np.asarray(v, float) for v in nll_points)
    fam_nll, fam_acc = (np.asarray(v, float) for v in family_points)
    checks.distinct_rows({"C": C, "nll": nll}, source="stage 1 points")
    checks.distinct_rows({"nll": fam_nll, "accuracy": fam_acc}, source="stage 2 points")
    checks.varying(nll, "nll", "stage 1 points")
    checks.varying(fam_acc, "accuracy", "stage 2 points")
    stage1 = fit_nll_law(C, nll)
    stage2 = fit_sigmoid(fam_nll, fam_acc, chance, top)
    nll_hat = float(stage1(target_flops))
    acc_hat = float(stage2(nll_hat))

    rng = np.random.default_rng(seed)
    # Stage 1 for every resample at once: weighted least squares on (log C, log nll).
    n1 = len(C)
    w = np.zeros((n_bootstrap, n1))
    np.add.at(w, (np.arange(n_bootstrap)[:, None], rng.integers(0, n1, (n_bootstrap, n1))), 1.0)
    lx, ly = np.log10(C), np.log10(nll)
    sw = w.sum(1)
    mx, my = (w @ lx) / sw, (w @ ly) / sw
    sxx = (w * (lx - mx[:, None]) ** 2).sum(1)
    sxy = (w * (lx - mx[:, None]) * (ly - my[:, None])).sum(1)
    ok1 = sxx > 0  # a resample with a single distinct budget has no slope
    slope = np.where(ok1, sxy / np.where(ok1, sxx, 1.0), np.nan)
    nll_boot = 10.0 ** (my + slope * (np.log10(target_flops) - mx))

    acc_boot = np.full(n_bootstrap, np.nan)
    n2 = len(fam_nll)
    for i in range(n_bootstrap):
        if not ok1[i]:
            continue
        pick = rng.integers(0, n2, n2)
        if np.unique(fam_nll[pick]).size < 3:
            continue
        try:
            s = fit_sigmoid(fam_nll[pick], fam_acc[pick], chance, top)
        except FitError:
            continue
        acc_boot[i] = float(s(nll_boot[i]))
    good = np.isfinite(acc_boot)
    failed = int((~good).sum())
    if good.sum() < 0.5 * n_bootstrap:
        raise FitError(f"{failed} of {n_bootstrap} bootstrap resamples could not be fitted")
    tail = 50.0 * (1.0 - level)
    q = [tail, 100.0 - tail]
    nll_lo, nll_hi = np.percentile(nll_boot[ok1], q)
    acc_lo, acc_hi = np.percentile(acc_boot[good], q)
    return DownstreamForecast(
        C=float(target_flops),
        nll=nll_hat,
        nll_interval=(float(nll_lo), float(nll_hi)),
        accuracy=acc_hat,
        accuracy_interval=(float(acc_lo), float(acc_hi)),
        nll_law=stage1,
        sigmoid=stage2,
        n_bootstrap=n_bootstrap,
        n_failed=failed,
    )


def read_nll(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 table: CSV columns ``C`` (FLOPs) and ``nll``."""
    cols = read_columns(path, ("C", "nll"))
    return cols["C"], cols["nll"]


def read_family(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Stage-2 table: CSV columns ``nll`` and ``accuracy`` (0..1)."""
    cols = read_columns(path, ("nll", "accuracy"), positive=("nll",))
    return cols["nll"], cols["accuracy"]
