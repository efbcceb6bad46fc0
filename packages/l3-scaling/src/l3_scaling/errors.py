"""Errors raised by l3-scaling; each names the file, row or budget that was wrong."""

from __future__ import annotations

from l3_core.errors import L3Error


class ScalingError(L3Error):
    """Base class of every error raised on purpose by l3-scaling."""


class DataError(ScalingError, ValueError):
    """An input table (CSV of runs or points, metrics file) is missing, malformed or invalid."""


class FitError(ScalingError, RuntimeError):
    """A fit cannot be made from the data (too few points, no interior minimum, no convergence)."""


class SweepError(ScalingError, RuntimeError):
    """A sweep cannot be planned, a run failed, or its results cannot be collected."""
