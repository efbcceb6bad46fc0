"""Main-job stage: the IsoFLOP method with a prediction checked by a run trained afterwards.

1. A few-minute version of ``benchmarks/bench_scaling_sweep.py`` (the same pipeline,
   ``l3_scaling.sweep.pipeline``, on the 768-id corpus with real ``l3-core train`` runs, 2 at
   once): a centring first pass, 4 budgets over 0.64 decades x 3 sizes, one noise seed per
   budget, the fit, the prediction written to ``results.json``, then the held-out budget (3x)
   and the errors. At this size the stage shows that every step runs and what the numbers
   are; it cannot pin the exponent (4 budgets over a factor of 4.3, 3 sizes each: its interval
   is wide), and the loss and accuracy errors it reports are one sample of a noisy estimate.
   What it concludes is printed with it (``conclusion``).
2. The full benchmark's results (``L3_SCALING_RESULTS`` or
   ``<repo>/runs/bench-sweep-small/results.json``), when present.

``L3_SCALING_STAGE_BUDGETS="3e10,5e10,8e10,1.3e11"`` overrides the stage's budgets (below 3e10
the optimum sits at the ladder's smallest model and that budget has no interior minimum).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from l3_scaling.corpus import small_cloze
from l3_scaling.errors import FitError
from l3_scaling.fits.isoflops import runs_from_arrays
from l3_scaling.plots import plot_heldout, plot_isoflops
from l3_scaling.sweep.pipeline import cloze_scorer, load_pipeline, run_pipeline

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "packages" / "l3-scaling" / "examples" / "cpu-sweep-small.toml"
BUDGETS = os.environ.get("L3_SCALING_STAGE_BUDGETS", "3e10,5e10,8e10,1.3e11")
FULL = Path(
    os.environ.get("L3_SCALING_RESULTS", ROOT / "runs" / "bench-sweep-small" / "results.json")
)


def _summary(results: dict[str, Any]) -> dict[str, Any]:
    pred, meas, err = results["prediction"], results["measured"], results["errors"]
    law = pred["fitted"]["isoflops"]["tokens_law"]
    noise = pred["fitted"]["noise"]
    return {
        "tokens_alpha": round(law["alpha"], 3),
        "tokens_alpha_95": [round(v, 3) for v in law["alpha_interval"]],
        "budgets_fitted": law["n_budgets"],
        "heldout_C": pred["C"],
        "predicted_N_opt": round(pred["N_opt"]),
        "predicted_loss": round(pred["loss_opt"], 4),
        "measured_loss": round(meas["loss_at_predicted_N"], 4),
        "loss_error_pct": round(100 * err["loss_relative"], 2),
        "predicted_accuracy": round(pred["downstream"]["accuracy"], 3),
        "predicted_accuracy_95": [round(v, 3) for v in pred["downstream"]["accuracy_interval"]],
        "measured_accuracy": round(meas["accuracy"], 3),
        "seed_noise_sd": noise["seed_sd"],
        "min_curvature_over_noise": noise["min_curvature_over_noise"],
    }


def _conclusion(s: dict[str, Any]) -> str:
    lo, hi = s["tokens_alpha_95"]
    ratio = s["min_curvature_over_noise"]
    return (
        f"tokens exponent {s['tokens_alpha']} with 95% interval {lo}..{hi} "
        f"({'under' if hi - lo < 0.2 else 'over'} the 0.2 goal, from {s['budgets_fitted']} "
        "budgets; a t interval on so few points understates the error); "
        f"curvature/noise >= {ratio if ratio is None else round(ratio, 2)} "
        f"({'parabolas resolved' if ratio and ratio > 1 else 'noise as large as the curvature'}); "
        f"predicted loss off by {s['loss_error_pct']}% and accuracy by "
        f"{round(s['predicted_accuracy'] - s['measured_accuracy'], 3)} at one held-out budget "
        "(one sample: it shows the pipeline runs, not how good the method is)"
    )


def run(workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    budgets = [float(b) for b in BUDGETS.split(",")]
    cfg, pipe = load_pipeline(
        CONFIG,
        [
            f"out_dir={workdir}",
            f"budgets={budgets}",
            "sizes_per_budget=3",
            "decades=0.8",
            "eval_batches=8",
            "pipeline.cloze_items=200",
            "pipeline.n_bootstrap=200",
            "pipeline.heldout_factor=3.0",
            "pipeline.max_extensions=1",
        ],
    )
    if not shutil.which("l3-core"):
        cfg.command = [sys.executable, "-m", "l3_core.train"]
    task = small_cloze(pipe.cloze_items)
    out: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = run_pipeline(cfg, pipe, cloze_scorer(task), task.chance)
        except FitError as e:
            return {"stage_pipeline": f"no fit: {e}"}
    summary = _summary(result.results)
    means = result.means
    runs = runs_from_arrays(means["C"], means["N"], means["D"], means["loss"])
    out["stage"] = summary
    out["stage_conclusion"] = _conclusion(summary)
    out["stage_runs"] = sum(s.runs for s in result.stages)
    out["stage_plots"] = [
        str(plot_isoflops(result.fit, runs, workdir / "isoflops.png")),
        str(plot_heldout(result.results, workdir / "forecast.png")),
    ]
    out["slurm_scripts"] = [str(workdir / f"{s.name}.sbatch") for s in result.stages]
    if caught:
        out["warnings"] = sorted({str(w.message) for w in caught})
    if FULL.is_file():
        full = _summary(json.loads(FULL.read_text(encoding="utf-8")))
        out["benchmark"] = full
        out["benchmark_conclusion"] = _conclusion(full)
    else:
        out["benchmark"] = (
            f"{FULL} absent: run benchmarks/bench_scaling_sweep.py (about an hour on an idle "
            "2-core machine) or set L3_SCALING_RESULTS"
        )
    return out
