"""Reading SFT and preference rows from JSONL (plain, gzip, zstd) or Parquet files.

A row that is not JSON, or fails validation (:mod:`l3_align.data.rows`), goes to the
:class:`~l3_core.jsonl.Exclusions` with its file, line and reason; nothing is dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from l3_align.data.rows import (
    PreferenceRow,
    RowError,
    SFTRow,
    parse_preference_row,
    parse_sft_row,
)
from l3_align.errors import AlignInputError
from l3_core.errors import DependencyError
from l3_core.jsonl import Exclusions, iter_jsonl

R = TypeVar("R")
_PARQUET_MAGIC = b"PAR1"


def iter_raw_rows(
    path: str | os.PathLike[str], exclusions: Exclusions
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, row)`` of a JSONL or Parquet file (Parquet rows are numbered from 1)."""
    path = Path(path)
    if _is_parquet(path):
        yield from _iter_parquet(path)
    else:
        yield from iter_jsonl(path, on_bad_row=exclusions.add)


def read_rows(
    path: str | os.PathLike[str],
    parse: Callable[[Mapping[str, Any], str, int], R],
    exclusions: Exclusions,
) -> list[R]:
    """Every valid row of ``path``; invalid ones go to ``exclusions``."""
    name = str(path)
    out: list[R] = []
    for line, raw in iter_raw_rows(path, exclusions):
        try:
            out.append(parse(raw, name, line))
        except RowError as e:
            exclusions.reject(name, line, str(e))
    return out


def read_sft_rows(path: str | os.PathLike[str], exclusions: Exclusions) -> list[SFTRow]:
    return read_rows(path, parse_sft_row, exclusions)


def read_preference_rows(
    path: str | os.PathLike[str], exclusions: Exclusions
) -> list[PreferenceRow]:
    return read_rows(path, parse_preference_row, exclusions)


def _is_parquet(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == _PARQUET_MAGIC
    except OSError:
        return False  # the JSONL reader names the problem


def _iter_parquet(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DependencyError(
            f"{path}: reading Parquet needs pyarrow: pip install 'l3-align[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own error types for corrupt files
        raise AlignInputError(f"{path}: not a readable Parquet file ({e})") from None
    yield from enumerate(table.to_pylist(), 1)
