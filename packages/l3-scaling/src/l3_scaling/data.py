"""Reading tables of training runs: CSV with N (parameters), D (tokens), C (FLOPs), loss.

A table is read whole or not at all: the first bad row (not UTF-8, a value that is not a
number, not finite, or not > 0 where it must be) stops the read with a :class:`TableError`
naming the file, line, column and value. Blank rows are skipped. Plain, gzip and zstd files
are recognised by their content (:func:`l3_core.jsonl.iter_lines`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l3_core.errors import InputError
from l3_core.jsonl import iter_lines
from l3_scaling.errors import TableError

# Accepted header spellings; the first is the canonical name. Epoch's extracted Chinchilla
# table uses N_params, D_tokens and C_flop.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "N": ("N", "N_params", "params", "n_params"),
    "D": ("D", "D_tokens", "tokens", "n_tokens"),
    "C": ("C", "C_flop", "C_flops", "flops"),
    "loss": ("loss", "val_loss", "final_loss"),
}


@dataclass(frozen=True)
class Runs:
    """Columns of a runs table; ``lines[i]`` is the CSV line of row i (for error messages)."""

    N: np.ndarray
    D: np.ndarray
    loss: np.ndarray
    C: np.ndarray | None
    lines: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.loss)


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (a leading byte-order mark dropped); a byte that is not
    UTF-8 is an error naming the file and line."""
    out = []
    try:
        for n, raw in iter_lines(path):
            try:
                out.append(raw.decode("utf-8-sig" if n == 1 else "utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as e:
                raise TableError(
                    f"{path}:{n}: not UTF-8 (byte {raw[e.start : e.start + 1]!r} at column "
                    f"{e.start + 1}); save the table as UTF-8"
                ) from None
    except TableError:
        raise
    except InputError as e:
        raise TableError(str(e)) from None
    return out


def _find_columns(
    path: Path, header: list[str], required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str]:
    columns: dict[str, str] = {}
    for name in (*required, *optional):
        found = [a for a in COLUMN_ALIASES.get(name, (name,)) if a in header]
        if found:
            columns[name] = found[0]
    missing = [c for c in required if c not in columns]
    if missing:
        raise TableError(
            f"{path}: missing column(s) {', '.join(missing)}; header is {header}; "
            f"expected {', '.join(required)} (accepted names: "
            + "; ".join(f"{'/'.join(COLUMN_ALIASES.get(c, (c,)))}" for c in missing)
            + ")"
        )
    return columns


def _value(path: Path, lineno: int, col: str, raw: str, must_be_positive: bool) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TableError(
            f"{path}:{lineno}: column {col!r} has {raw!r}; expected a number"
        ) from None
    if not math.isfinite(value) or (must_be_positive and value <= 0):
        expected = "a finite value > 0" if must_be_positive else "a finite value"
        raise TableError(f"{path}:{lineno}: column {col!r} has {raw!r}; expected {expected}")
    return value


def read_columns(
    path: str | Path,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    positive: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Read numeric CSV columns (by canonical name or alias) plus ``lines``, the CSV line of
    each row. Values must be finite, and > 0 for the columns in ``positive`` (default: all).
    """
    path = Path(path)
    reader = csv.DictReader(read_text_lines(path))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    columns = _find_columns(path, header, required, optional)
    must_be_positive = set(columns if positive is None else positive)
    values: dict[str, list[float]] = {c: [] for c in columns}
    lines: list[int] = []
    for row in reader:
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        lineno = reader.line_num
        for name, col in columns.items():
            raw = (row.get(col) or "").strip()
            values[name].append(_value(path, lineno, col, raw, name in must_be_positive))
        lines.append(lineno)
    if not lines:
        raise TableError(f"{path}: no data rows")
    out = {k: np.asarray(v, float) for k, v in values.items()}
    out["lines"] = np.asarray(lines)
    return out


def read_runs(path: str | Path, required: tuple[str, ...] = ("N", "D", "loss")) -> Runs:
    """Read a CSV of runs (columns N, D, loss and optionally C; see ``COLUMN_ALIASES``)."""
    optional = tuple(c for c in ("N", "D", "C") if c not in required)
    cols = read_columns(path, required, optional)
    n = len(cols["lines"])
    return Runs(
        N=cols.get("N", np.full(n, np.nan)),
        D=cols.get("D", np.full(n, np.nan)),
        loss=cols["loss"],
        C=cols.get("C"),
        lines=cols["lines"],
        source=str(path),
    )
