from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from l3_scaling.errors import FitError, TableError
from l3_scaling.fits.parametric import (
    PARAM_NAMES,
    HuberLogObjective,
    LossLaw,
    batched_levenberg_marquardt,
    bootstrap_weights,
    epoch_grid,
    fit_parametric,
)

TRUE = LossLaw(E=1.8, A=480.0, B=2100.0, alpha=0.35, beta=0.37)


def _grid_points(law: LossLaw, noise: float = 0.0, seed: int = 0):
    N, D = np.meshgrid(np.logspace(7, 10, 12), np.logspace(9, 12, 12))
    N, D = N.ravel(), D.ravel()
    loss = law.loss(N, D) * np.exp(noise * np.random.default_rng(seed).standard_normal(N.size))
    return N, D, loss


def test_recovers_exact_parameters_from_noise_free_points():
    fit = fit_parametric(*_grid_points(TRUE))
    for name in PARAM_NAMES:
        assert getattr(fit.law, name) == pytest.approx(getattr(TRUE, name), rel=2e-3), name


def test_noisy_points_give_bootstrap_intervals_that_cover_the_truth():
    fit = fit_parametric(*_grid_points(TRUE, noise=0.01, seed=3), n_bootstrap=300)
    for name in ("E", "alpha", "beta"):
        lo, hi = fit.bootstrap.interval(name)
        assert lo <= getattr(TRUE, name) <= hi, (name, lo, hi)
    assert fit.law.alpha == pytest.approx(TRUE.alpha, abs=0.03)
    assert fit.law.beta == pytest.approx(TRUE.beta, abs=0.03)


def test_objective_gradient_matches_finite_differences():
    N, D, loss = _grid_points(TRUE, noise=0.02)
    obj = HuberLogObjective(N, D, loss)
    q = obj.centre(np.array([6.0, 7.5, 0.55, 0.3, 0.4]))
    _, g = obj.value_and_grad(q)
    eps = 1e-6
    num = [(obj.value(q + eps * e) - obj.value(q - eps * e))[0] / (2 * eps) for e in np.eye(5)]
    np.testing.assert_allclose(g[0], num, rtol=1e-5, atol=1e-9)


def test_epoch_grid_spans_the_published_start_values():
    grid = epoch_grid()
    assert grid.shape == (6 * 6 * 5 * 5 * 5, 5)
    assert set(np.unique(grid[:, 3])) == {0.0, 0.5, 1.0, 1.5, 2.0}
    assert set(np.unique(grid[:, 0])) == {0.0, 5.0, 10.0, 15.0, 20.0, 25.0}


def test_batched_solver_reaches_scipy_lbfgs_per_resample_optimum():
    N, D, loss = _grid_points(TRUE, noise=0.01, seed=1)
    obj = HuberLogObjective(N, D, loss)
    q0 = obj.centre(np.array([*np.log([TRUE.A, TRUE.B, TRUE.E]), TRUE.alpha, TRUE.beta]))[0]
    w = bootstrap_weights(12, len(N), seed=5)
    q, f, ok = batched_levenberg_marquardt(obj, np.tile(q0, (12, 1)), w)
    assert ok.all()
    for k in range(12):

        def fun(x, k=k):
            v, g = obj.value_and_grad(x[None], w[k : k + 1])
            return float(v[0]), g[0]

        ref = minimize(
            fun,
            q0,
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000},
        )
        assert f[k] <= ref.fun * (1 + 1e-6)
        np.testing.assert_allclose(q[k], ref.x, atol=2e-2)


def test_optimal_allocation_minimises_loss_on_the_isoflop():
    for C in (1e20, 1e23):
        n_opt, d_opt = TRUE.optimal_allocation(C)
        assert 6 * n_opt * d_opt == pytest.approx(C)
        res = minimize_scalar(
            lambda x, C=C: TRUE.loss(10**x, C / (6 * 10**x)),
            bounds=(5, 14),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert np.log10(n_opt) == pytest.approx(res.x, abs=1e-4)
    assert TRUE.tokens_exponent + TRUE.params_exponent == pytest.approx(1.0)


def test_drop_highest_excludes_exactly_the_highest_losses():
    N, D, loss = _grid_points(TRUE)
    fit = fit_parametric(N, D, loss, drop_highest=3)
    assert sorted(fit.excluded_rows) == sorted(np.argsort(loss)[-3:].tolist())
    assert fit.n_points == len(loss) - 3


def test_dropping_too_many_points_is_an_error():
    N, D, loss = _grid_points(TRUE)
    with pytest.raises(FitError, match=r"less the 6 highest losses: 4 point\(s\) for 5 parameters"):
        fit_parametric(N[:10], D[:10], loss[:10], drop_highest=6)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_non_positive_or_missing_values_are_rejected_naming_the_row(bad):
    N, D, loss = _grid_points(TRUE)
    loss[7] = bad
    with pytest.raises(TableError, match="row 7"):
        fit_parametric(N, D, loss)
