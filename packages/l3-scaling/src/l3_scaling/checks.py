"""The checks every fit makes on its arguments and its points, with errors that name them."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from l3_scaling.errors import FitError, ParameterError, TableError

# A fit needs this many points per free parameter before its intervals mean anything: the
# 5-parameter law fitted to 7 points gave a bootstrap interval reaching 1e167.
POINTS_PER_PARAMETER = 2


class FewPointsWarning(UserWarning):
    """A fit was forced on fewer points than its parameters need for usable intervals."""


def level(value: float, name: str = "level") -> float:
    """An interval level strictly between 0 and 1."""
    if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
        raise ParameterError(name, value, "a level strictly between 0 and 1, e.g. 0.95")
    return float(value)


def non_negative_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParameterError(name, value, "an integer >= 0")
    return int(value)


def positive(value: float, name: str) -> float:
    """A finite number > 0 (a budget, a window, a tolerance)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ParameterError(name, value, "a finite number > 0")
    return float(value)


def distinct_rows(
    columns: Mapping[str, np.ndarray],
    lines: Sequence[int] | np.ndarray | None = None,
    source: str = "",
) -> None:
    """Refuse a table in which a row repeats another in every fitted column: a file joined to
    itself, or a run collected twice, would weigh that run double and shrink the intervals.

    ``lines`` are the rows' line numbers in ``source`` (default: row indices from 0)."""
    names = list(columns)
    table = np.column_stack([np.asarray(columns[n], float) for n in names])
    _, first, counts = np.unique(table, axis=0, return_index=True, return_counts=True)
    dup = np.flatnonzero(counts > 1)
    if dup.size == 0:
        return
    row = table[first[dup[0]]]
    same = np.flatnonzero((table == row).all(axis=1))
    label = "rows" if lines is None else "lines"
    numbers = ", ".join(str(i if lines is None else int(lines[i])) for i in same.tolist())
    where = f"{source} {label}" if source else label
    values = ", ".join(f"{n}={v:g}" for n, v in zip(names, row))
    raise TableError(
        f"{where} {numbers} are duplicates ({values}); {int(dup.size)} distinct row(s) "
        "occur more than once: remove the repeated rows (a fit would count them twice)"
    )


def varying(values: np.ndarray, name: str, source: str = "") -> None:
    """Refuse a column whose values are all equal: no law can be fitted to a constant."""
    values = np.asarray(values, float)
    if values.size and np.all(values == values[0]):
        where = f"{source}: " if source else ""
        raise TableError(
            f"{where}every row has {name}={values[0]:g}; a law cannot be fitted to a constant "
            f"{name}"
        )


def enough_points(n: int, n_params: int, what: str, allow_few: bool = False) -> None:
    """At least one point more than ``n_params``; below ``POINTS_PER_PARAMETER`` per parameter
    refuse (or, with ``allow_few``, warn) because the intervals are meaningless there."""
    if n <= n_params:
        raise FitError(
            f"{what}: {n} point(s) for {n_params} parameters; at least {n_params + 1} are needed"
        )
    need = POINTS_PER_PARAMETER * n_params
    if n >= need:
        return
    message = (
        f"{what}: {n} points for {n_params} parameters; below {need} the fit is "
        "barely determined and its intervals are meaningless"
    )
    if not allow_few:
        raise FitError(f"{message} (allow_few_points / --allow-few-points fits anyway)")
    warnings.warn(message, FewPointsWarning, stacklevel=3)


def check(checks: Mapping[str, tuple[Any, bool, str]], where: str = "") -> None:
    """Run named checks ``{name: (value, ok, expected)}``; the first failing one raises."""
    for name, (value, ok, expected) in checks.items():
        if not ok:
            raise ParameterError(name, value, expected, where)
