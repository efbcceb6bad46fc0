from __future__ import annotations

import warnings

import numpy as np
import pytest

from l3_scaling.errors import FitError, TableError
from l3_scaling.fits.isoflops import (
    BudgetWarning,
    fit_budget,
    fit_isoflops,
    group_budgets,
    runs_from_arrays,
)
from l3_scaling.fits.parametric import LossLaw
from l3_scaling.synthetic import isoflop_runs

HOFFMANN = LossLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
EPOCH = LossLaw(E=1.81686, A=482.0, B=2085.4, alpha=0.34781, beta=0.36585)


@pytest.mark.parametrize("law", [HOFFMANN, EPOCH], ids=["hoffmann", "epoch"])
@pytest.mark.parametrize("span", [(7.5, 10.5), (7.5, 9.5)], ids=["3-decades", "2-decades"])
def test_windowed_parabolas_recover_tokens_exponent_on_a_fixed_size_ladder(law, span):
    # Every budget trains the same model sizes, so each budget's minimum sits elsewhere in its
    # sweep: the global parabola's vertex bias then differs per budget and leaks into alpha.
    sizes = np.logspace(*span, 25)
    budgets = np.logspace(18.3, 20.7, 7) if span[1] - span[0] == 3 else np.logspace(18, 19.8, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BudgetWarning)
        runs = isoflop_runs(law, budgets, sizes)
        windowed = fit_isoflops(runs)
        glob = fit_isoflops(runs, window_decades=None)
    assert windowed.tokens_law.alpha == pytest.approx(law.tokens_exponent, abs=0.02)
    assert abs(windowed.tokens_law.alpha - law.tokens_exponent) < 1e-3
    assert abs(glob.tokens_law.alpha - law.tokens_exponent) > abs(
        windowed.tokens_law.alpha - law.tokens_exponent
    )


def test_noisy_runs_give_an_alpha_interval_that_covers_the_truth():
    runs = isoflop_runs(
        HOFFMANN, np.logspace(18, 22, 9), decades=2.5, sizes_per_budget=15, noise=0.003, seed=2
    )
    fit = fit_isoflops(runs)
    lo, hi = fit.tokens_law.alpha_interval(0.95)
    assert lo <= HOFFMANN.tokens_exponent <= hi
    assert fit.tokens_law.alpha == pytest.approx(HOFFMANN.tokens_exponent, abs=0.02)


def test_params_law_follows_from_the_runs_own_N_D_relation():
    runs = isoflop_runs(HOFFMANN, np.logspace(18, 21, 5), decades=2)
    fit = fit_isoflops(runs)
    for b in fit.budgets:
        assert 6 * b.N_opt * b.D_opt == pytest.approx(b.C, rel=1e-9)
    assert fit.params_law.alpha + fit.tokens_law.alpha == pytest.approx(1.0, abs=1e-6)


def _parabola_runs(A: float, alpha: float, budgets, width=1.0, points=9):
    """Runs whose loss is an exact parabola in log10 D around D* = A C^alpha."""
    C, N, D, loss = [], [], [], []
    for c in budgets:
        x_opt = np.log10(A * c**alpha)
        x = x_opt + np.linspace(-width, width, points)
        C += [c] * points
        D += list(10**x)
        N += list(c / (6 * 10**x))
        loss += list(2.0 + 0.1 * (x - x_opt) ** 2)
    return runs_from_arrays(C, N, D, loss)


# Llama 3 paper, section 3.2.1 / Figure 3: N*(C) = A C^alpha (training tokens) with the figure's
# label values, budgets 6e18 to 1e22 FLOPs, extrapolated to the flagship's 3.8e25 FLOPs.
FIGURE3_A, FIGURE3_ALPHA, FLAGSHIP_FLOPS = 0.299, 0.537, 3.8e25


def test_extrapolation_reproduces_the_llama3_figure3_tokens():
    runs = _parabola_runs(FIGURE3_A, FIGURE3_ALPHA, np.logspace(18.8, 22, 6))
    fit = fit_isoflops(runs)
    assert fit.tokens_law.alpha == pytest.approx(FIGURE3_ALPHA, rel=1e-9)
    assert pytest.approx(FIGURE3_A, rel=1e-6) == fit.tokens_law.A
    target = fit.extrapolate(FLAGSHIP_FLOPS)
    # The closed form: about 16.3T tokens (the paper's 16.55T needs its unrounded fit).
    assert target["D_opt"] == pytest.approx(FIGURE3_A * FLAGSHIP_FLOPS**FIGURE3_ALPHA, rel=1e-6)
    assert 16.2e12 < target["D_opt"] < 16.4e12


@pytest.mark.filterwarnings("ignore:only 2 budgets")
def test_budget_without_interior_minimum_names_it_and_asks_to_widen():
    runs = _parabola_runs(0.3, 0.53, [1e19, 1e20, 1e21])
    # keep only the points left of each minimum: loss still falls at the largest D
    keep = []
    for c in (1e19, 1e20, 1e21):
        idx = np.flatnonzero(c == runs.C)
        keep += list(idx[:4]) if c == 1e20 else list(idx)
    sub = runs_from_arrays(runs.C[keep], runs.N[keep], runs.D[keep], runs.loss[keep])
    with pytest.raises(
        FitError, match=r"budget C=1e\+20: no interior minimum.*widened toward more tokens"
    ):
        fit_isoflops(sub)
    with pytest.warns(BudgetWarning, match=r"skipping budget C=1e\+20"):
        fit = fit_isoflops(sub, on_bad_budget="skip")
    assert [b.C for b in fit.budgets] == [1e19, 1e21]
    assert fit.skipped[0][0] == pytest.approx(1e20)


def test_fewer_than_three_points_per_budget_is_an_error_naming_the_budget():
    runs = runs_from_arrays([1e18, 1e18], [1e7, 2e7], [1e10, 5e9], [3.0, 2.9])
    with pytest.raises(FitError, match=r"budget C=1e\+18: 2 run\(s\).*at least 3"):
        fit_isoflops(runs)


def test_monotonic_budget_says_which_way_to_widen():
    x = np.array([9.0, 9.5, 10.0])
    with pytest.raises(
        FitError,
        match=r"no interior minimum: the lowest loss is at the largest "
        r"token count.*widened toward more tokens",
    ):
        fit_budget(1e20, 1e20 / (6 * 10**x), 10**x, np.array([3.0, 2.9, 2.5]))


def test_concave_budget_is_an_error():
    x = np.array([9.0, 9.5, 10.0, 10.5])
    with pytest.raises(FitError, match="not convex"):
        fit_budget(1e20, 1e20 / (6 * 10**x), 10**x, 3.0 - 0.1 * (x - 9.7) ** 2)


def test_lowest_loss_at_an_edge_warns():
    x = np.linspace(9, 10, 5)
    loss = 2 + 0.1 * (x - 9.95) ** 2  # vertex inside, but the lowest sample is the last one
    with pytest.warns(BudgetWarning, match="lowest loss is at the largest token count"):
        fit_budget(1e20, 1e20 / (6 * 10**x), 10**x, loss)


def test_budgets_group_within_relative_tolerance():
    C = np.array([1e18, 1.02e18, 0.99e18, 3e18, 3.05e18, 1e19])
    labels = group_budgets(C, rtol=0.05)
    assert labels.tolist() == [0, 0, 0, 1, 1, 2]


def test_two_budgets_fit_but_warn_that_there_is_no_interval():
    runs = _parabola_runs(0.3, 0.5, [1e19, 1e21])
    with pytest.warns(BudgetWarning, match="only 2 budgets"):
        fit = fit_isoflops(runs)
    assert fit.tokens_law.alpha == pytest.approx(0.5)


def test_non_positive_values_are_rejected_naming_the_row():
    with pytest.raises(TableError, match="row 1"):
        runs_from_arrays([1e18, 1e18], [1e7, -2e7], [1e10, 5e9], [3.0, 2.9])
