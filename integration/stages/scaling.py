"""Main-job stage: the IsoFLOP pipeline with real l3-core runs, and the IsoFLOP fit.

1. A tiny sweep (2 budgets x 3 model sizes, about 2 minutes on the 2-core CPU): plan shapes and
   token counts, write l3-core configs and the Slurm array script, train each run with
   ``l3-core train`` as a subprocess, collect the final validation losses into ``runs.csv``, and
   try the windowed IsoFLOP fit. At budgets this small the optimum lies below the smallest
   model an 8,192-id vocabulary allows, so the fit is expected to report "no interior minimum"
   (the stage shows the message rather than hiding it).
2. The IsoFLOP fit (alpha, A of D* = A C^alpha, and the plot) on the runs of the CPU sweep
   benchmark (``benchmarks/bench_scaling_sweep.py``, about 40 minutes, budgets 5e11..2e12
   FLOPs), read from ``L3_SCALING_RUNS`` or ``<repo>/runs/bench-sweep/runs.csv`` when present.

``L3_SCALING_STAGE_BUDGETS="2e10,4e10"`` overrides the tiny sweep's budgets.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

from l3_scaling.data import Runs, read_runs
from l3_scaling.errors import FitError
from l3_scaling.fits.isoflops import fit_isoflops
from l3_scaling.plots import plot_isoflops
from l3_scaling.sweep import load_sweep, plan_sweep, run_sweep, write_sweep

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "packages" / "l3-scaling" / "examples" / "cpu-sweep.toml"
BUDGETS = os.environ.get("L3_SCALING_STAGE_BUDGETS", "2e10,4e10")
SWEEP_RUNS = Path(os.environ.get("L3_SCALING_RUNS", ROOT / "runs" / "bench-sweep" / "runs.csv"))


def _fit(runs: Runs, plot: Path) -> dict:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = fit_isoflops(runs, on_bad_budget="skip", min_points=3)
        except FitError as e:
            return {"fit": f"no fit: {e}"}
    out: dict = {
        "alpha": round(fit.tokens_law.alpha, 4),
        "A": float(f"{fit.tokens_law.A:.4g}"),
        "params_alpha": round(fit.params_law.alpha, 4),
        "budgets_fitted": [f"{b.C:.2g}" for b in fit.budgets],
        "plot": str(plot_isoflops(fit, runs, plot)),
    }
    if caught:
        out["warnings"] = [str(w.message) for w in caught]
    return out


def run(workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    budgets = [float(b) for b in BUDGETS.split(",")]
    command = (
        [shutil.which("l3-core"), "train"]
        if shutil.which("l3-core")
        else [sys.executable, "-m", "l3_core.train"]
    )
    cfg = load_sweep(
        CONFIG,
        [
            f"out_dir={workdir}",
            f"budgets={budgets}",
            "sizes_per_budget=3",
            "decades=0.6",
            "eval_batches=2",
            "global_batch_size=16",
            "micro_batch_size=16",
            "min_steps=5",
        ],
    )
    cfg.command = command
    plan = plan_sweep(cfg)
    write_sweep(plan, cfg)
    runs = read_runs(run_sweep(plan, cfg), required=("C", "N", "D", "loss"))
    out: dict = {
        "tiny_sweep_runs": len(runs),
        "tiny_sweep_val_loss": {
            f"{c:.2g}": {
                f"N={n:.3g}": round(float(x), 4)
                for n, x in zip(runs.N[c == runs.C], runs.loss[c == runs.C])
            }
            for c in sorted(set(runs.C.tolist()))
        },
        "slurm_script": str(workdir / "sweep.sbatch"),
        "tiny_sweep_isoflops": _fit(runs, workdir / "tiny_isoflops.png"),
    }
    if SWEEP_RUNS.exists():
        out["cpu_sweep_runs_csv"] = str(SWEEP_RUNS)
        out["cpu_sweep_isoflops"] = _fit(
            read_runs(SWEEP_RUNS, required=("C", "N", "D", "loss")),
            workdir / "cpu_sweep_isoflops.png",
        )
    else:
        out["cpu_sweep_isoflops"] = (
            f"{SWEEP_RUNS} absent: run benchmarks/bench_scaling_sweep.py "
            "(about 40 minutes) or set L3_SCALING_RUNS"
        )
    return out
