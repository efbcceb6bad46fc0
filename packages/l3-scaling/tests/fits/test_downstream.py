from __future__ import annotations

import numpy as np
import pytest

from l3_scaling.errors import FitError
from l3_scaling.fits.downstream import fit_downstream, fit_sigmoid

# Stage 1: NLL = 30 C^-0.08; stage 2: acc = 0.25 + 0.75 / (1 + exp(6 (nll - 1.0))).
A1, ALPHA1, K, X0, CHANCE = 30.0, -0.08, 6.0, 1.0, 0.25


def _truth_nll(C):
    return A1 * np.asarray(C) ** ALPHA1


def _truth_acc(nll):
    return CHANCE + (1 - CHANCE) / (1 + np.exp(K * (np.asarray(nll) - X0)))


def test_noise_free_stages_compose_to_the_true_forecast():
    C = np.logspace(18, 22, 8)
    fam_nll = np.linspace(0.5, 1.8, 10)
    f = fit_downstream((C, _truth_nll(C)), (fam_nll, _truth_acc(fam_nll)), 1e24, n_bootstrap=200)
    assert f.nll_law.alpha == pytest.approx(ALPHA1, rel=1e-6)
    assert f.sigmoid.k == pytest.approx(K, rel=1e-4)
    assert f.nll == pytest.approx(float(_truth_nll(1e24)), rel=1e-6)
    assert f.accuracy == pytest.approx(float(_truth_acc(_truth_nll(1e24))), rel=1e-4)


def test_noisy_forecast_interval_covers_the_truth():
    rng = np.random.default_rng(0)
    C = np.logspace(18, 22, 8)
    nll = _truth_nll(C) * np.exp(0.01 * rng.standard_normal(8))
    fam_nll = np.linspace(0.5, 1.8, 12)
    acc = _truth_acc(fam_nll) + 0.01 * rng.standard_normal(12)
    f = fit_downstream((C, nll), (fam_nll, acc), 1e23, n_bootstrap=300)
    truth = float(_truth_acc(_truth_nll(1e23)))
    assert f.accuracy_interval[0] <= truth <= f.accuracy_interval[1]
    assert f.nll_interval[0] <= float(_truth_nll(1e23)) <= f.nll_interval[1]


def test_too_few_points_per_stage_is_an_error():
    with pytest.raises(FitError, match="stage 1 needs at least 3"):
        fit_downstream(([1e18, 1e19], [2.0, 1.8]), ([0.5, 1.0, 1.5], [0.9, 0.6, 0.3]), 1e20)
    with pytest.raises(FitError, match="stage 2 needs at least 3"):
        fit_sigmoid(np.array([0.5, 1.0]), np.array([0.9, 0.5]))
