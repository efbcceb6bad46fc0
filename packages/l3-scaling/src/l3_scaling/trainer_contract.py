"""What a sweep shares with l3-core's trainer, in one place: the run config it writes and the
metrics file it reads back.

Both contracts belong to l3-core. Today the run config is ``l3_core.train.config.RunConfig``,
which imports torch (its parallel sizes live beside the process groups), and l3-core has no
torch-free metrics reader, so this module reads ``metrics.jsonl`` with l3-core's JSONL
primitives. When l3-core's torch-free ``run_config`` and ``metrics_schema`` modules land, only
the imports and bodies below change; nothing else in l3-scaling knows where they live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from l3_core.config import from_dict, to_dict
from l3_core.errors import ConfigError, DependencyError
from l3_core.io import atomic_write
from l3_core.jsonl import BadRow, iter_lines, parse_row
from l3_scaling.errors import SweepError, TableError

if TYPE_CHECKING:
    from l3_core.train.config import RunConfig

METRICS_FILE = "metrics.jsonl"


def _run_config_class() -> type[RunConfig]:
    try:
        from l3_core.train.config import RunConfig
    except ImportError as e:
        raise DependencyError(
            f"writing l3-core run configs needs l3-core's trainer config, which imports torch "
            f"today ({e}); install 'l3-core[model]'"
        ) from e
    return RunConfig


def build_run_config(data: Mapping[str, Any], where: str = "") -> RunConfig:
    """The trainer's :class:`RunConfig` from nested keys; an unknown key or a wrong type is a
    :class:`~l3_scaling.errors.SweepError` naming it (so a typo in a sweep's ``[trainer]``
    table fails when the sweep is planned, not when its first run starts)."""
    try:
        return from_dict(_run_config_class(), data)
    except ConfigError as e:
        raise SweepError(f"{where}: {e}" if where else str(e)) from None


def _without_none(obj: Any) -> Any:
    # TOML has no null: an unset optional key (e.g. model.dim = None) is left out, which the
    # trainer reads back as the same default.
    if isinstance(obj, dict):
        return {k: _without_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list):
        return [_without_none(v) for v in obj]
    return obj


def write_run_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write ``cfg`` as the trainer's TOML, atomically."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        tomli_w.dump(_without_none(to_dict(cfg)), f)
    return path


def _records(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The metric records of ``path`` and whether the file is complete: a last line without
    its newline (the trainer was killed mid-write) makes it incomplete; any other bad line is
    a :class:`TableError` naming the file and line."""
    records: list[dict[str, Any]] = []
    for n, raw in iter_lines(path):
        if not raw.strip():
            continue
        row = parse_row(raw, str(path), n)
        if isinstance(row, BadRow):
            if not raw.endswith(b"\n"):  # only the last line can lack its newline
                return records, False
            raise TableError(str(row))
        records.append(row)
    return records, True


def final_val_loss(run_dir: str | Path, steps: int) -> float | None:
    """The run's final ``val_loss``, or None while the run is unfinished (no metrics file, a
    cut last line, or no ``val_loss`` at step >= ``steps`` - 1: the trainer may count steps
    from 0 or 1)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return None
    records, complete = _records(path)
    if not complete or not records:
        return None
    last = records[-1]
    step = last.get("step", -1)
    if "val_loss" not in last or not isinstance(step, int) or step < steps - 1:
        return None
    value = last["val_loss"]
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise TableError(
            f"{path}: final val_loss={value!r} at step {step} is not a positive finite number"
        )
    return float(value)
