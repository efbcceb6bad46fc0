"""What a sweep shares with l3-core's trainer, in one place: the run config it writes and the
metrics it reads back.

Both contracts belong to l3-core's torch-free base (:mod:`l3_core.run_config`,
:mod:`l3_core.metrics_schema`); this module only adds the sweep's view of them: a config
error names the sweep run, and "finished" means a validation loss at the last step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from l3_core.config import from_dict
from l3_core.errors import ConfigError, InputError
from l3_core.metrics_schema import metrics_path, read_metrics
from l3_core.run_config import RunConfig
from l3_core.run_config import write_run_config as _write_run_config
from l3_scaling.errors import SweepError, TableError


def build_run_config(data: Mapping[str, Any], where: str = "") -> RunConfig:
    """The trainer's :class:`RunConfig` from nested keys; an unknown key or a wrong type is a
    :class:`~l3_scaling.errors.SweepError` naming it (so a typo in a sweep's ``[trainer]``
    table fails when the sweep is written, not when its first run starts)."""
    try:
        return from_dict(RunConfig, data)
    except ConfigError as e:
        raise SweepError(f"{where}: {e}" if where else str(e)) from None


def write_run_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write ``cfg`` as the trainer's TOML, atomically."""
    return _write_run_config(path, cfg)


def final_val_loss(run_dir: str | Path, steps: int) -> float | None:
    """The run's final ``val_loss``, or None while the run is unfinished (no metrics file, or
    the last record has no ``val_loss`` at step >= ``steps`` - 1: the trainer may count steps
    from 0 or 1). A cut last line (a killed run) is not a record; any other bad line is a
    :class:`TableError` naming the file and line."""
    path = metrics_path(run_dir)
    if not path.is_file():
        return None
    try:
        records = read_metrics(path)
    except InputError as e:
        raise TableError(str(e)) from None
    if not records:
        return None
    last = records[-1]
    if last.val_loss is None or last.step < steps - 1:
        return None
    if not (math.isfinite(last.val_loss) and last.val_loss > 0):
        raise TableError(
            f"{path}: final val_loss={last.val_loss!r} at step {last.step} is not a positive "
            "finite number"
        )
    return last.val_loss
