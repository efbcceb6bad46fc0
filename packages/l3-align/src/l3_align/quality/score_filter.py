"""Reward-model score filtering (paper 4.2.3): rows whose score falls below a threshold are
excluded with the reason, never dropped silently."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from l3_core.jsonl import Exclusions


def filter_by_score(
    rows: Iterable[tuple[str, int, Mapping[str, Any]]],
    min_score: float,
    exclusions: Exclusions,
    field: str = "score",
) -> Iterator[Mapping[str, Any]]:
    """The rows ``(source, line, row)`` whose ``field`` is at least ``min_score``."""
    for source, line, row in rows:
        value = row.get(field)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            exclusions.reject(source, line, f"field {field!r} is not a number: {value!r}")
        elif value < min_score:
            exclusions.reject(source, line, f"score below {min_score}: {value}")
        else:
            yield row
