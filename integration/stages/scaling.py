"""Main-job stage: the IsoFLOP method end to end on a tiny sweep of real l3-core runs.

Plans 3 budgets x 3 model sizes from ``packages/l3-scaling/examples/cpu-sweep.toml`` (scaled
down to 6e10..2.4e11 FLOPs, about 3 minutes on the 2-core CPU), trains each with ``l3-core train`` as a subprocess, collects the final validation
losses, fits the windowed IsoFLOP parabolas and the tokens law D* = A C^alpha, and plots them.
Budgets without an interior minimum are reported and left out of the fit (at budgets this
small the optimum can fall below the smallest model the 8,192-id vocabulary allows).

Override the budgets with ``L3_SCALING_STAGE_BUDGETS="1e11,2e11,4e11"``.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

from l3_scaling.data import read_runs
from l3_scaling.errors import FitError
from l3_scaling.fits.isoflops import fit_isoflops
from l3_scaling.plots import plot_isoflops
from l3_scaling.sweep import load_sweep, plan_sweep, run_sweep, write_sweep

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "packages" / "l3-scaling" / "examples" / "cpu-sweep.toml"
BUDGETS = os.environ.get("L3_SCALING_STAGE_BUDGETS", "6e10,1.2e11,2.4e11")


def run(workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    budgets = [float(b) for b in BUDGETS.split(",")]
    command = ([shutil.which("l3-core"), "train"] if shutil.which("l3-core")
               else [sys.executable, "-m", "l3_core.train"])
    # Batches of 32 sequences: these models are bound by per-step overhead, so fewer, larger
    # steps finish the same tokens sooner.
    cfg = load_sweep(CONFIG, [f"out_dir={workdir}", f"budgets={budgets}", "sizes_per_budget=3",
                              "decades=0.6", "eval_batches=8", "global_batch_size=32",
                              "micro_batch_size=32", "min_steps=10"])
    cfg.command = command
    plan = plan_sweep(cfg)
    write_sweep(plan, cfg)
    runs = read_runs(run_sweep(plan, cfg), required=("C", "N", "D", "loss"))
    out: dict = {
        "runs": len(runs),
        "val_loss_by_budget": {
            f"{c:.2g}": [round(float(x), 4) for x in runs.loss[c == runs.C]]
            for c in sorted(set(runs.C.tolist()))
        },
        "slurm_script": str(workdir / "sweep.sbatch"),
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_isoflops(runs, on_bad_budget="skip", min_points=3)
        except FitError as e:
            fit = None
            out["isoflops"] = f"no fit: {e}"
    out["warnings"] = [str(w.message) for w in caught]
    if fit is not None:
        out.update(
            alpha=round(fit.tokens_law.alpha, 4),
            A=float(f"{fit.tokens_law.A:.4g}"),
            params_alpha=round(fit.params_law.alpha, 4),
            budgets_fitted=[f"{b.C:.2g}" for b in fit.budgets],
            plot=str(plot_isoflops(fit, runs, workdir / "isoflops.png")),
        )
    return out
