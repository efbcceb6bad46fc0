"""Collecting a sweep: every finished run's final validation loss into ``runs.csv``."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from l3_core.io import atomic_write
from l3_scaling.errors import SweepError
from l3_scaling.sweep.config import SweepConfig
from l3_scaling.sweep.plan import PlannedRun
from l3_scaling.trainer_contract import final_val_loss

log = logging.getLogger(__name__)

RUNS_COLUMNS = ("name", "C", "C_actual", "N", "D", "loss", "steps", "dim", "n_layers", "seed")


def collect(
    plan: Sequence[PlannedRun],
    cfg: SweepConfig,
    *,
    allow_missing: bool = True,
    warn_missing: bool = True,
    table: str = "runs.csv",
) -> Path:
    """Write ``table`` (``runs.csv``; columns C, N, D, loss, ...) from every finished run; C
    is the planned budget so that runs of one budget group exactly."""
    rows = []
    missing = []
    for run in {r.name: r for r in plan}.values():  # a run two passes planned counts once
        loss = final_val_loss(run.run_dir, run.steps)
        if loss is None:
            missing.append(run.name)
            continue
        rows.append(
            [
                run.name,
                run.budget,
                run.flops,
                run.params,
                run.tokens,
                loss,
                run.steps,
                run.dim,
                run.n_layers,
                run.seed,
            ]
        )
    if missing and not allow_missing:
        raise SweepError(f"{len(missing)} run(s) unfinished: {', '.join(missing)}")
    if missing and warn_missing:
        log.warning("%d of %d runs unfinished: %s", len(missing), len(plan), ", ".join(missing))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RUNS_COLUMNS)
    writer.writerows(rows)
    path = Path(cfg.out_dir) / table
    with atomic_write(path, encoding="utf-8") as f:
        f.write(buf.getvalue())
    return path
