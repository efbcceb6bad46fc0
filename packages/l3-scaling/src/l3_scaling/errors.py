"""Errors raised by l3-scaling; each names the file, row, parameter or budget that was wrong.

Every class subclasses one of l3-core's, so the exit code of ``l3-scaling`` follows the class
(:mod:`l3_core.exit_codes`): a bad table is INPUT (4), a bad parameter or sweep config is
CONFIG (3), a fit without a solution or a failed sweep run is RUNTIME (8).
"""

from __future__ import annotations

from typing import Any

from l3_core.errors import ConfigError, InputError, L3Error


class ScalingError(L3Error):
    """Base class of every error raised on purpose by l3-scaling."""


class TableError(ScalingError, InputError):
    """An input table (a CSV of runs or points, a run's metrics file) is missing, malformed,
    or holds rows no fit can use (duplicates, constant losses)."""


class ParameterError(ScalingError, ConfigError):
    """A fit or sweep parameter has a value outside its range.

    ``name`` is the parameter (or config key) as the caller spelled it; a command line
    re-raises it under its flag with :meth:`renamed`.
    """

    def __init__(self, name: str, value: Any, expected: str, where: str = "") -> None:
        self.name, self.value, self.expected, self.where = name, value, expected, where
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{name} = {value!r}: expected {expected}")

    def renamed(self, name: str) -> ParameterError:
        return ParameterError(name, self.value, self.expected, self.where)


class FitError(ScalingError, RuntimeError):
    """A fit cannot be made from the data (too few points, no interior minimum, no convergence)."""


class SweepError(ScalingError, RuntimeError):
    """A sweep cannot be planned, a run failed, or its results cannot be collected."""
