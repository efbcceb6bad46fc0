from __future__ import annotations

import numpy as np
import pytest

from l3_core.errors import ConfigError, InputError
from l3_core.exit_codes import ExitCode
from l3_scaling.checks import FewPointsWarning, distinct_rows, enough_points
from l3_scaling.errors import FitError, ParameterError, TableError
from l3_scaling.fits.downstream import fit_downstream
from l3_scaling.fits.isoflops import fit_isoflops
from l3_scaling.fits.parametric import LossLaw, fit_parametric
from l3_scaling.synthetic import isoflop_runs

LAW = LossLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def _points(n=64):
    N, D = np.meshgrid(np.logspace(7, 10, 8), np.logspace(9, 12, 8))
    N, D = N.ravel()[:n], D.ravel()[:n]
    return N, D, LAW.loss(N, D)


def test_error_classes_carry_the_exit_codes_of_their_l3_core_bases():
    assert issubclass(TableError, InputError) and TableError("x").exit_code == ExitCode.INPUT
    assert issubclass(ParameterError, ConfigError)
    assert ParameterError("level", 2, "< 1").exit_code == ExitCode.CONFIG
    assert FitError("x").exit_code == ExitCode.RUNTIME


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"drop_highest": -3}, "drop_highest"),
        ({"n_bootstrap": -5}, "n_bootstrap"),
        ({"level": 1.5}, "level"),
        ({"n_starts": -1}, "n_starts"),
    ],
)
def test_parametric_names_the_out_of_range_parameter_and_value(kwargs, name):
    with pytest.raises(ParameterError) as e:
        fit_parametric(*_points(), **kwargs)
    assert (e.value.name, e.value.value) == (name, next(iter(kwargs.values())))
    assert str(e.value).startswith(f"{name} = {next(iter(kwargs.values()))!r}: expected")


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"window_decades": -1.0}, "window_decades"),
        ({"level": 0.0}, "level"),
        ({"min_points": 2}, "min_points"),
        ({"budget_rtol": -0.1}, "budget_rtol"),
        ({"on_bad_budget": "ignore"}, "on_bad_budget"),
    ],
)
def test_isoflops_names_the_out_of_range_parameter(kwargs, name):
    runs = isoflop_runs(LAW, np.logspace(18, 21, 4), decades=2, sizes_per_budget=9)
    with pytest.raises(ParameterError, match=f"^{name} = "):
        fit_isoflops(runs, **kwargs)


def test_a_negative_target_budget_is_refused_everywhere():
    runs = isoflop_runs(LAW, np.logspace(18, 21, 4), decades=2, sizes_per_budget=9)
    with pytest.raises(ParameterError, match=r"target_flops = -1e\+22"):
        fit_isoflops(runs).extrapolate(-1e22)
    with pytest.raises(ParameterError, match="target_flops = -1.0"):
        fit_parametric(*_points()).at_budget(-1.0)
    C = np.logspace(18, 22, 6)
    fam = np.linspace(0.5, 1.8, 8)
    with pytest.raises(ParameterError, match="target_flops = -5.0"):
        fit_downstream((C, 30 * C**-0.08), (fam, 1 - fam / 2), -5.0)


def test_at_budget_is_the_laws_optimal_allocation():
    fit = fit_parametric(*_points())
    t = fit.at_budget(1e23)
    n, d = fit.law.optimal_allocation(1e23)
    assert (t["N_opt"], t["D_opt"]) == (float(n), float(d))
    assert t["loss"] == pytest.approx(float(fit.law.loss(n, d)))


def test_duplicated_rows_name_every_copy_with_its_line():
    cols = {"N": np.array([1.0, 2.0, 1.0, 3.0, 1.0]), "loss": np.array([3.0, 2.0, 3.0, 1.0, 3.0])}
    with pytest.raises(TableError, match=r"t\.csv lines 2, 4, 6 are duplicates \(N=1, loss=3\)"):
        distinct_rows(cols, lines=[2, 3, 4, 5, 6], source="t.csv")
    # the same N with another loss is a replicate, not a duplicate
    distinct_rows({"N": np.array([1.0, 1.0]), "loss": np.array([3.0, 3.1])})


def test_duplicated_points_and_constant_losses_are_refused_by_the_fits():
    N, D, loss = _points()
    with pytest.raises(TableError, match="rows 0, 64 are duplicates"):
        fit_parametric(np.append(N, N[0]), np.append(D, D[0]), np.append(loss, loss[0]))
    with pytest.raises(TableError, match="every row has loss=2"):
        fit_parametric(N, D, np.full_like(loss, 2.0))


def test_fewer_points_than_twice_the_parameters_refuse_unless_allowed():
    enough_points(10, 5, "t")  # the boundary passes
    with pytest.raises(FitError, match="t: 5 point.*at least 6"):
        enough_points(5, 5, "t", allow_few=True)  # no degrees of freedom even when forced
    with pytest.raises(FitError, match="t: 9 points for 5 parameters; below 10"):
        enough_points(9, 5, "t")
    with pytest.warns(FewPointsWarning, match="below 10"):
        enough_points(9, 5, "t", allow_few=True)
    N, D, loss = _points(7)
    with pytest.raises(FitError, match="7 points for 5 parameters"):
        fit_parametric(N, D, loss)
    with pytest.warns(FewPointsWarning):
        fit_parametric(N, D, loss, allow_few_points=True)
