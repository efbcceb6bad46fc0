"""l3-scaling: compute-optimal scaling laws for l3 models.

IsoFLOP analysis the Llama 3 way, the parametric law L(N, D) fitted Epoch AI's way with
bootstrap intervals, two-stage downstream prediction, and a sweep planner/runner that drives
``l3-core train``.
"""

from __future__ import annotations

from l3_core.versions import package_version
from l3_scaling.checks import FewPointsWarning
from l3_scaling.data import Runs, read_columns, read_runs
from l3_scaling.errors import FitError, ParameterError, ScalingError, SweepError, TableError
from l3_scaling.fits.downstream import DownstreamForecast, fit_downstream
from l3_scaling.fits.isoflops import BudgetFit, IsoFlopFit, PowerLaw, fit_budget, fit_isoflops
from l3_scaling.fits.parametric import (
    ConvergenceWarning,
    LossLaw,
    ParametricFit,
    fit_parametric,
)
from l3_scaling.flops import run_flops, scaling_params, tokens_for_budget

__version__ = package_version("l3-scaling")

__all__ = [
    "BudgetFit",
    "ConvergenceWarning",
    "DownstreamForecast",
    "FewPointsWarning",
    "FitError",
    "IsoFlopFit",
    "LossLaw",
    "ParameterError",
    "ParametricFit",
    "PowerLaw",
    "Runs",
    "ScalingError",
    "SweepError",
    "TableError",
    "fit_budget",
    "fit_downstream",
    "fit_isoflops",
    "fit_parametric",
    "read_columns",
    "read_runs",
    "run_flops",
    "scaling_params",
    "tokens_for_budget",
]
