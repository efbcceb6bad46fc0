"""Reading tables of training runs: CSV with N (parameters), D (tokens), C (FLOPs), loss."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l3_scaling.errors import DataError

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


def read_columns(
    path: str | Path,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    positive: tuple[str, ...] | None = None,
) -> dict[str, np.ndarray]:
    """Read numeric CSV columns (by canonical name or alias) plus ``lines``, the CSV line of
    each row. Values must be finite, and > 0 for the columns in ``positive`` (default: all).

    Errors name the file, the line, the column and the value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    columns: dict[str, str] = {}
    for name in (*required, *optional):
        found = [a for a in COLUMN_ALIASES.get(name, (name,)) if a in header]
        if found:
            columns[name] = found[0]
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; header is {header}; "
            f"expected {', '.join(required)} (accepted names: "
            + "; ".join(f"{'/'.join(COLUMN_ALIASES.get(c, (c,)))}" for c in missing)
            + ")"
        )
    must_be_positive = set(columns if positive is None else positive)
    values: dict[str, list[float]] = {c: [] for c in columns}
    lines: list[int] = []
    for lineno, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        for name, col in columns.items():
            raw = (row.get(col) or "").strip()
            try:
                value = float(raw)
            except ValueError:
                raise DataError(
                    f"{path}:{lineno}: column {col!r} has {raw!r}; expected a number"
                ) from None
            if not math.isfinite(value) or (name in must_be_positive and value <= 0):
                expected = "a finite value > 0" if name in must_be_positive else "a finite value"
                raise DataError(f"{path}:{lineno}: column {col!r} has {raw!r}; expected {expected}")
            values[name].append(value)
        lines.append(lineno)
    if not lines:
        raise DataError(f"{path}: no data rows")
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
