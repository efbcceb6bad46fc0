"""The parametric loss law L(N, D) = E + A/N^alpha + B/D^beta, fitted Epoch AI's way.

Protocol (Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt"): fit
``log L = LSE(a - alpha log N, b - beta log D, e)`` (A = e^a, B = e^b, E = e^e) by minimising
the Huber loss (delta = 1e-3) of the log-loss residuals, with L-BFGS started from a grid of
4,500 points, keeping the best end point.

Two things make it fast without changing the objective:

* the grid is scored in one vectorised pass and L-BFGS-B (scipy) starts only from the best
  ``n_starts`` grid points (``n_starts=None`` runs all 4,500, as Epoch did);
* the bootstrap solves all resamples at once: a resample is a vector of multiplicities
  (weights) over the same points, and a batched Levenberg-Marquardt / iteratively reweighted
  least-squares solver (the classic solver for Huber regression) steps every resample together
  with ``numpy.linalg.solve`` on a stack of 5x5 systems.

Internally ``a`` and ``b`` are centred (``a' = a - alpha * mean(log N)``) because ``a`` and
``alpha`` are otherwise almost collinear, which slows every optimiser down.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from l3_scaling import checks
from l3_scaling.errors import FitError, TableError

log = logging.getLogger(__name__)

PARAM_NAMES = ("E", "A", "B", "alpha", "beta")


class ConvergenceWarning(UserWarning):
    """A fit (or some bootstrap resamples) stopped before reaching a minimum."""


def epoch_grid() -> np.ndarray:
    """Epoch's 4,500 starting points, as rows ``(a, b, e, alpha, beta)``."""
    alpha = np.arange(0.0, 2.5, 0.5)
    e = np.arange(-1.0, 1.5, 0.5)
    ab = np.arange(0.0, 30.0, 5.0)
    g = np.meshgrid(ab, ab, e, alpha, alpha, indexing="ij")
    return np.stack([x.ravel() for x in g], axis=1)


@dataclass(frozen=True)
class LossLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float

    def loss(self, N: Any, D: Any) -> np.ndarray:
        N, D = np.asarray(N, float), np.asarray(D, float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    @property
    def params_exponent(self) -> float:
        """a in N_opt ∝ C^a (with C = 6ND)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def tokens_exponent(self) -> float:
        """b in D_opt ∝ C^b (with C = 6ND)."""
        return self.alpha / (self.alpha + self.beta)

    def optimal_allocation(self, C: Any) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal (N, D) for budget C under C = 6ND (Hoffmann et al. eq. 4)."""
        C = np.asarray(C, float)
        G = (self.alpha * self.A / (self.beta * self.B)) ** (1.0 / (self.alpha + self.beta))
        N = G * (C / 6.0) ** self.params_exponent
        D = (C / 6.0) ** self.tokens_exponent / G
        return N, D

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Bootstrap:
    """Bootstrap replicates of the fit: ``samples[:, i]`` holds parameter ``PARAM_NAMES[i]``."""

    samples: np.ndarray
    level: float
    n_unconverged: int

    def interval(self, name: str) -> tuple[float, float]:
        """Percentile interval at ``level`` (e.g. 95%)."""
        col = self.samples[:, PARAM_NAMES.index(name)]
        tail = 50.0 * (1.0 - self.level)
        lo, hi = np.percentile(col, [tail, 100.0 - tail])
        return float(lo), float(hi)

    def se(self, name: str) -> float:
        return float(np.std(self.samples[:, PARAM_NAMES.index(name)], ddof=1))


@dataclass(frozen=True)
class ParametricFit:
    """The best fit of the law, its objective, and (optionally) bootstrap intervals."""

    law: LossLaw
    objective: float
    n_points: int
    excluded_rows: tuple[int, ...]
    bootstrap: Bootstrap | None = None

    def at_budget(self, C: float) -> dict[str, float]:
        """The compute-optimal N and D at budget ``C`` (C = 6ND) and the law's loss there."""
        C = checks.positive(C, "target_flops")
        n_opt, d_opt = self.law.optimal_allocation(C)
        return {
            "C": C,
            "N_opt": float(n_opt),
            "D_opt": float(d_opt),
            "loss": float(self.law.loss(n_opt, d_opt)),
        }

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.law.to_dict()
        out["tokens_exponent"] = self.law.tokens_exponent
        out["params_exponent"] = self.law.params_exponent
        out["huber_objective"] = self.objective
        out["n_points"] = self.n_points
        out["excluded_rows"] = list(self.excluded_rows)
        if self.bootstrap is not None:
            b = self.bootstrap
            out["intervals"] = {k: list(b.interval(k)) for k in PARAM_NAMES}
            out["se"] = {k: b.se(k) for k in PARAM_NAMES}
            out["level"] = b.level
            out["n_resamples"] = len(b.samples)
            out["n_unconverged"] = b.n_unconverged
        return out


class HuberLogObjective:
    """Huber loss of log-loss residuals, vectorised over a batch of parameter vectors.

    Parameters are rows ``(a', b', e, alpha, beta)`` in centred form; ``weights`` (k, n) are
    per-row multiplicities of the points (a bootstrap resample), or None for all ones.
    """

    def __init__(self, N: np.ndarray, D: np.ndarray, loss: np.ndarray, delta: float = 1e-3):
        self.log_n, self.log_d = np.log(N), np.log(D)
        self.c_n, self.c_d = float(self.log_n.mean()), float(self.log_d.mean())
        self.x_n, self.x_d = self.log_n - self.c_n, self.log_d - self.c_d
        self.log_loss = np.log(loss)
        self.delta = delta

    def centre(self, theta: np.ndarray) -> np.ndarray:
        q = np.array(theta, float, copy=True, ndmin=2)
        q[:, 0] -= q[:, 3] * self.c_n
        q[:, 1] -= q[:, 4] * self.c_d
        return q

    def uncentre(self, q: np.ndarray) -> np.ndarray:
        theta = np.array(q, float, copy=True, ndmin=2)
        theta[:, 0] += theta[:, 3] * self.c_n
        theta[:, 1] += theta[:, 4] * self.c_d
        return theta

    @overload
    def residuals(
        self, q: np.ndarray, jacobian: Literal[True] = ...
    ) -> tuple[np.ndarray, np.ndarray]: ...

    @overload
    def residuals(self, q: np.ndarray, jacobian: Literal[False]) -> tuple[np.ndarray, None]: ...

    def residuals(
        self, q: np.ndarray, jacobian: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Residuals (k, n) and, if asked, their Jacobian (k, n, 5)."""
        a, b, e, alpha, beta = (q[:, i : i + 1] for i in range(5))
        t1 = a - alpha * self.x_n
        t2 = b - beta * self.x_d
        t3 = np.broadcast_to(e, t1.shape)
        m = np.maximum(np.maximum(t1, t2), t3)
        e1, e2, e3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(t3 - m)
        s = e1 + e2 + e3
        r = m + np.log(s) - self.log_loss
        if not jacobian:
            return r, None
        p1, p2, p3 = e1 / s, e2 / s, e3 / s
        jac = np.stack([p1, p2, p3, -p1 * self.x_n, -p2 * self.x_d], axis=-1)
        return r, jac

    def huber(self, r: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        ar = np.abs(r)
        h = np.where(ar <= self.delta, 0.5 * r * r, self.delta * (ar - 0.5 * self.delta))
        return (h if weights is None else h * weights).sum(axis=1)

    def value_and_grad(
        self, q: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        r, jac = self.residuals(q)
        psi = np.clip(r, -self.delta, self.delta)
        if weights is not None:
            psi = psi * weights
        return self.huber(r, weights), np.einsum("kn,knp->kp", psi, jac)

    def value(self, q: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return self.huber(self.residuals(q, jacobian=False)[0], weights)


def _check_points(N: Any, D: Any, loss: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(x, dtype=float).ravel() for x in (N, D, loss)]
    if len({len(a) for a in arrays}) != 1:
        raise TableError(f"N, D and loss differ in length: {[len(a) for a in arrays]}")
    for name, a in zip(("N", "D", "loss"), arrays):
        bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))
        if bad.size:
            raise TableError(
                f"{name} must be finite and positive; row {int(bad[0])} has {name}={a[bad[0]]!r}"
                f" ({bad.size} bad row(s))"
            )
    return arrays[0], arrays[1], arrays[2]


def _lbfgs(obj: HuberLogObjective, q0: np.ndarray) -> tuple[np.ndarray, float, bool]:
    def f(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = obj.value_and_grad(x[None])
        return float(v[0]), g[0]

    # scipy's default tolerances, as in Epoch's notebook; the best end point is polished
    # afterwards, so a loose stop here costs nothing.
    res = minimize(f, q0, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return res.x, float(res.fun), bool(res.success)


def batched_levenberg_marquardt(
    obj: HuberLogObjective,
    q0: np.ndarray,
    weights: np.ndarray | None = None,
    max_iter: int = 5000,
    rtol: float = 1e-13,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise the Huber objective for every row of ``q0`` (and of ``weights``) at once.

    Each iteration solves the reweighted Gauss-Newton system
    ``(J' W J + lambda diag(J' W J)) step = -J' psi`` for all active rows; a row's step is kept
    only if it lowers that row's objective (then lambda shrinks) and lambda grows otherwise.
    A row stops when an accepted step improves its objective by less than ``rtol`` relatively
    or when no step is accepted even with lambda at 1e10. Returns (q, objective, converged).
    """
    q = np.array(q0, float, copy=True)
    k = len(q)
    w = np.ones((k, obj.log_loss.size)) if weights is None else np.asarray(weights, float)
    f = obj.huber(obj.residuals(q, jacobian=False)[0], w)
    lam = np.full(k, 1e-3)
    active = np.ones(k, bool)
    eye = np.eye(5)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        # Residuals and Jacobian are recomputed for the active rows rather than stored for
        # all: gathering a stored (k, n, 5) Jacobian costs more than recomputing it.
        wa = w if idx.size == k else w[idx]
        ra, ja = obj.residuals(q[idx])
        psi = np.clip(ra, -obj.delta, obj.delta) * wa
        irls = wa * np.minimum(1.0, obj.delta / np.maximum(np.abs(ra), 1e-300))
        grad = np.matmul(psi[:, None, :], ja)[:, 0, :]
        hess = np.matmul(np.swapaxes(ja * irls[:, :, None], 1, 2), ja)
        diag = np.diagonal(hess, axis1=1, axis2=2)
        damped = hess + lam[idx, None, None] * (eye * (diag[:, :, None] + 1e-12))
        step = np.linalg.solve(damped, -grad[:, :, None])[:, :, 0]
        q_new = q[idx] + step
        f_new = obj.huber(obj.residuals(q_new, jacobian=False)[0], wa)
        ok = np.isfinite(f_new) & (f_new < f[idx])
        acc = idx[ok]
        small = (f[acc] - f_new[ok]) <= rtol * np.abs(f[acc])
        q[acc], f[acc] = q_new[ok], f_new[ok]
        lam[acc] = np.maximum(lam[acc] * 0.3, 1e-12)
        rej = idx[~ok]
        lam[rej] *= 10.0
        active[acc[small]] = False
        active[rej[lam[rej] > 1e10]] = False
    converged = ~active
    return q, f, converged


def fit_parametric(
    N: Sequence[float] | np.ndarray,
    D: Sequence[float] | np.ndarray,
    loss: Sequence[float] | np.ndarray,
    *,
    drop_highest: int = 0,
    delta: float = 1e-3,
    n_starts: int | None = 32,
    n_bootstrap: int = 0,
    level: float = 0.95,
    seed: int = 0,
    allow_few_points: bool = False,
    lines: Sequence[int] | np.ndarray | None = None,
    source: str = "",
) -> ParametricFit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta to points (N params, D tokens, final loss).

    ``drop_highest=5`` reproduces Epoch's exclusion of the five highest losses. ``n_bootstrap``
    resamples the (kept) points with replacement and refits all resamples together, starting
    from the full-data optimum. Fewer than ``checks.POINTS_PER_PARAMETER`` kept points per
    parameter are refused unless ``allow_few_points`` (then a :class:`FewPointsWarning`);
    duplicated rows and constant losses are refused. ``lines`` and ``source`` (the table's
    line numbers and file) only make messages name rows the way the table does.
    """
    N, D, loss = _check_points(N, D, loss)
    drop_highest = checks.non_negative_int(drop_highest, "drop_highest")
    n_bootstrap = checks.non_negative_int(n_bootstrap, "n_bootstrap")
    checks.level(level)
    checks.positive(delta, "delta")
    if n_starts is not None and checks.non_negative_int(n_starts, "n_starts") == 0:
        n_starts = None
    checks.distinct_rows({"N": N, "D": D, "loss": loss}, lines, source)
    checks.varying(loss, "loss", source)
    what = source or "the points"
    if drop_highest:
        what += f" less the {drop_highest} highest losses"
    checks.enough_points(len(loss) - drop_highest, len(PARAM_NAMES), what, allow_few_points)
    # Every BLAS call here is on 5-vectors or 5x5 matrices: OpenBLAS worker threads only spin
    # (measured 20x slower on a busy 2-core machine), so one thread it is.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(N, D, loss, drop_highest, delta, n_starts, n_bootstrap, level, seed)


def _fit(
    N: np.ndarray,
    D: np.ndarray,
    loss: np.ndarray,
    drop_highest: int,
    delta: float,
    n_starts: int | None,
    n_bootstrap: int,
    level: float,
    seed: int,
) -> ParametricFit:
    order = np.argsort(loss, kind="stable")
    excluded = (
        tuple(sorted(int(i) for i in order[len(order) - drop_highest :])) if drop_highest else ()
    )
    keep = np.setdiff1d(np.arange(len(loss)), excluded)
    obj = HuberLogObjective(N[keep], D[keep], loss[keep], delta)

    grid = obj.centre(epoch_grid())
    scores = obj.value(grid)
    starts = grid[np.argsort(scores)[: n_starts or len(grid)]]
    best_q, best_f, best_ok = None, np.inf, False
    for q0 in starts:
        q, fval, ok = _lbfgs(obj, q0)
        if fval < best_f:
            best_q, best_f, best_ok = q, fval, ok
    if best_q is None:
        raise FitError(
            "the parametric fit reached no finite objective from any start; check "
            "that the losses, N and D are on the scales the law expects"
        )
    # The L-BFGS-B end point is polished by the same solver the bootstrap uses, so that the
    # full-data fit and the resamples stop on the same criterion.
    q_ref, f_ref, conv = batched_levenberg_marquardt(obj, best_q[None])
    if f_ref[0] < best_f:
        best_q, best_f, best_ok = q_ref[0], float(f_ref[0]), bool(conv[0]) or best_ok
    if not best_ok:
        warnings.warn(
            f"parametric fit did not converge (Huber objective {best_f:.3g})",
            ConvergenceWarning,
            stacklevel=2,
        )
    law = _law(obj.uncentre(best_q)[0])
    log.info("parametric fit: %s (objective %.6g)", law, best_f)

    boot = None
    if n_bootstrap:
        boot = _bootstrap(obj, best_q, n_bootstrap, level, seed)
    return ParametricFit(law, best_f, len(keep), excluded, boot)


def _law(theta: np.ndarray) -> LossLaw:
    a, b, e, alpha, beta = (float(x) for x in theta)
    return LossLaw(
        E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=alpha, beta=beta
    )


def _bootstrap(
    obj: HuberLogObjective, q_best: np.ndarray, n: int, level: float, seed: int
) -> Bootstrap:
    weights = bootstrap_weights(n, obj.log_loss.size, seed)
    q, _, converged = batched_levenberg_marquardt(obj, np.tile(q_best, (n, 1)), weights)
    theta = obj.uncentre(q)
    samples = np.column_stack(
        [np.exp(theta[:, 2]), np.exp(theta[:, 0]), np.exp(theta[:, 1]), theta[:, 3], theta[:, 4]]
    )
    bad = int((~converged).sum())
    if bad:
        warnings.warn(
            f"{bad} of {n} bootstrap resamples did not converge; their last iterate is kept",
            ConvergenceWarning,
            stacklevel=3,
        )
    return Bootstrap(samples, level, bad)


def bootstrap_weights(n_resamples: int, n_points: int, seed: int = 0) -> np.ndarray:
    """The multiplicity matrix :func:`fit_parametric` uses, for peers that resample the same way."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_points, size=(n_resamples, n_points))
    weights = np.zeros((n_resamples, n_points))
    np.add.at(weights, (np.arange(n_resamples)[:, None], draws), 1.0)
    return weights
