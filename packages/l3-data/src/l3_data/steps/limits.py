"""Meaningful ranges of step options, as data: a step lists ``limits = option_limits(option: check)`` and
the pipeline checks every option against them when the file is loaded, naming the step, the
option and the value (``bands = -3``, ``threshold = 7.5`` or ``compression = 'bz2'`` are
refused before any work instead of running and finding nothing).

A check applies to a scalar option, to each element of a list option, and to each value of a
table option (``thresholds = {en = 0.5}``); ``None`` (a rule switched off) always passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol


class Check(Protocol):
    def accepts(self, value: Any) -> bool: ...

    def __str__(self) -> str: ...


@dataclass(frozen=True)
class Range:
    """A number within ``[low, high]``; ``low_open`` / ``high_open`` exclude the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return True  # the type is checked by the config loader, not here
        if math.isnan(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"a number in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"a number {'<' if self.high_open else '<='} {self.high:g}"
        return "a number"


@dataclass(frozen=True)
class OneOf:
    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return value in self.values

    def __str__(self) -> str:
        return f"one of {sorted(self.values)}"


@dataclass(frozen=True)
class PowerOfTwo:
    def accepts(self, value: Any) -> bool:
        return not isinstance(value, int) or (value >= 1 and not value & (value - 1))

    def __str__(self) -> str:
        return "a power of two"


POSITIVE = Range(1)  # counts and sizes that must be at least one
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)  # ratios, probabilities, thresholds of a score in [0, 1]


def option_limits(**checks: Check) -> Mapping[str, Check]:
    """A step's ``limits`` (read-only: it is shared by every instance)."""
    return MappingProxyType(checks)


def violations(options: Mapping[str, Any], limits: Mapping[str, Check]) -> list[str]:
    """``option = value: expected ...`` for every value outside its limit (table values are
    named ``option.key``)."""
    out = []
    for name, check in limits.items():
        value = options.get(name)
        items: list[tuple[str, Any]]
        if isinstance(value, Mapping):
            items = [(f"{name}.{k}", v) for k, v in value.items()]
        elif isinstance(value, list | tuple):
            items = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
        else:
            items = [(name, value)]
        for where, v in items:
            if v is not None and not check.accepts(v):
                out.append(f"{where} = {v!r}: expected {check}")
    return out
