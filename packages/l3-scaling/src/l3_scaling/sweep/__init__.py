"""IsoFLOP sweeps of l3-core runs: plan shapes and token counts per budget (``plan``), write
training configs and a Slurm array script (``files``), run them one after another
(``runner``), collect final losses (``collect``)."""

from __future__ import annotations

from l3_scaling.sweep.collect import RUNS_COLUMNS, collect
from l3_scaling.sweep.config import SweepConfig, load_sweep
from l3_scaling.sweep.files import slurm_script, trainer_config, write_sweep
from l3_scaling.sweep.plan import PlannedRun, plan_sweep, shape_ladder
from l3_scaling.sweep.runner import run_sweep
from l3_scaling.trainer_contract import final_val_loss

__all__ = [
    "RUNS_COLUMNS",
    "PlannedRun",
    "SweepConfig",
    "collect",
    "final_val_loss",
    "load_sweep",
    "plan_sweep",
    "run_sweep",
    "shape_ladder",
    "slurm_script",
    "trainer_config",
    "write_sweep",
]
