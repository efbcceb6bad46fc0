"""What one line of a run's ``metrics.jsonl`` holds: the trainer's per-step record.

This is a contract of the torch-free base: the trainer writes :class:`MetricsRecord` lines
(:mod:`l3_core.train.metrics`), and other packages (l3-scaling's sweeps, reports) read a run
with :func:`read_metrics`. Every line is checked against the schema; a bad line is an
:class:`~l3_core.errors.InputError` naming the file, the line, the key and the value. The one
exception is an unterminated last line, which a killed run leaves behind: it is dropped, as
the trainer drops it on resume.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l3_core.errors import InputError
from l3_core.jsonl import BadRow, iter_lines, parse_row

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class MetricsRecord:
    """One training step's figures (``step`` counts from 1: the record after ``step`` updates)."""

    step: int
    loss: float  # mean training loss of the step's tokens (nats/token)
    lr: float
    grad_norm: float  # NaN when the optimizer reports none
    tokens_per_s: float
    mfu: float  # model FLOPs utilisation, a fraction of the devices' peak
    seq_len: int
    batch_size: int  # global batch size, in sequences
    tokens: int  # tokens seen since the start of the run
    step_time_s: float
    # On evaluation steps only: the validation loss at ``data.seq_len``.
    val_loss: float | None = None
    # At the end of a long-context stage only (l3_core.train.long_context).
    stage: int | None = None
    stage_seq_len: int | None = None
    short_val_loss: float | None = None
    long_val_loss: float | None = None
    needle_recall: float | None = None
    needle_nll: float | None = None
    # Figures an objective adds (l3_core.train.objective.Objective.figures): e.g. a reward
    # model's pair accuracy or DPO's reward margin. Written as top-level keys; any key the
    # schema does not name is one of these and must be a number.
    extra: dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, row: Mapping[str, Any], where: str = "metrics record") -> MetricsRecord:
        """Check ``row`` against the schema (unknown or missing keys, wrong types) and build one."""
        if "extra" in row:
            raise InputError(
                f"{where}: 'extra' is not a metrics key (objective figures are top-level keys)"
            )
        # A null figure is one that was not measured, as if its key were absent.
        missing = [name for name in _REQUIRED if row.get(name) is None]
        if missing:
            raise InputError(f"{where}: missing metrics key {', '.join(missing)}")
        values: dict[str, Any] = {
            k: _number(v, _KINDS[k], f"{where}: {k}")
            for k, v in row.items()
            if v is not None and k in _KINDS
        }
        extra = {
            k: float(_number(v, float, f"{where}: {k}"))
            for k, v in row.items()
            if v is not None and k not in _KINDS
        }
        if values["step"] < 0:
            raise InputError(f"{where}: step = {values['step']} must be >= 0")
        return cls(**values, extra=extra)

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON object; figures that were not measured are left out."""
        clash = sorted(set(self.extra) & set(_KINDS))
        if clash:
            raise InputError(f"objective figure {', '.join(clash)} would overwrite a schema key")
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "extra"}
        return {**out, **self.extra}


def _number(value: Any, kind: type, where: str) -> int | float:
    # bool is an int to Python, never a figure here.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: expected {kind.__name__}, got {value!r}")
    if kind is int:
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise InputError(f"{where}: expected int, got {value!r}")
        return int(value)
    return float(value)


def _kinds() -> dict[str, type]:
    hints = typing.get_type_hints(MetricsRecord)
    return {
        f.name: next(
            t for t in (int, float) if t in (hints[f.name], *typing.get_args(hints[f.name]))
        )
        for f in dataclasses.fields(MetricsRecord)
        if f.name != "extra"
    }


_KINDS = _kinds()
_REQUIRED = [
    f.name
    for f in dataclasses.fields(MetricsRecord)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]


def metrics_path(run: str | os.PathLike[str]) -> Path:
    """The metrics file of ``run``: a run folder, or the ``metrics.jsonl`` file itself."""
    path = Path(run)
    return path / METRICS_FILE if path.is_dir() else path


def iter_metrics(run: str | os.PathLike[str]) -> Iterator[tuple[int, MetricsRecord]]:
    """``(line number, record)`` for each line of a run's metrics (see :func:`read_metrics`)."""
    path = metrics_path(run)
    name = str(path)
    for line, raw in iter_lines(path):
        if not raw.strip():
            continue
        row = parse_row(raw, name, line)
        if isinstance(row, BadRow):
            if not raw.endswith(b"\n"):
                return  # the last line, cut by a kill while it was written
            raise InputError(str(row))
        yield line, MetricsRecord.from_json(row, f"{name}:{line}")


def read_metrics(run: str | os.PathLike[str]) -> list[MetricsRecord]:
    """Every record of a run (its folder or its ``metrics.jsonl``), checked against the schema.

    An unterminated last line (a run killed mid-write) is dropped; any other bad line raises
    :class:`~l3_core.errors.InputError` naming ``file:line``.
    """
    return [record for _, record in iter_metrics(run)]
