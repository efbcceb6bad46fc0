"""The IsoFLOP method end to end on this CPU, with a prediction checked afterwards.

A first pass centres each budget's sizes, the sweep trains 5 sizes x 2 seeds per budget with
real ``l3-core train`` runs (2 at once, 1 thread each), the fit predicts N*, D*, loss and the
cloze accuracy at a budget 4x above the fitted range and writes them to ``results.json``;
then the held-out runs are trained and the errors recorded (``l3_scaling.sweep.pipeline``).
Resumable: rerunning skips finished runs (and their cached cloze scores).

  python benchmarks/bench_scaling_sweep.py [--config TOML] [--out DIR] [--set key=value]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from l3_scaling.corpus import small_cloze
from l3_scaling.fits.isoflops import runs_from_arrays
from l3_scaling.plots import plot_heldout, plot_isoflops
from l3_scaling.sweep.pipeline import cloze_scorer, load_pipeline, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "packages" / "l3-scaling" / "examples" / "cpu-sweep-small.toml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", type=Path, default=EXAMPLE)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-sweep-small")
    p.add_argument("--set", action="append", default=[])
    opts = p.parse_args()
    cfg, pipe = load_pipeline(opts.config, [f"out_dir={opts.out}", *opts.set])
    if cfg.command == ["l3-core", "train"] and not shutil.which("l3-core"):
        cfg.command = [sys.executable, "-m", "l3_core.train"]
    task = small_cloze(pipe.cloze_items)
    t0 = time.perf_counter()
    result = run_pipeline(cfg, pipe, cloze_scorer(task), task.chance)
    wall = time.perf_counter() - t0
    out = Path(cfg.out_dir)
    fit = result.fit
    means = result.means
    runs = runs_from_arrays(means["C"], means["N"], means["D"], means["loss"])
    plot_isoflops(fit, runs, out / "isoflops.png")
    plot_heldout(result.results, out / "forecast.png")
    for s in result.stages:
        print(f"stage {s.name}: {s.runs} runs, {s.trained} trained now")
    print(f"wall time {wall / 60:.1f} min (finished runs are skipped on a rerun)")
    print(f"{'C':>9} {'N':>9} {'D':>9} {'loss':>8} {'nll':>7} {'acc':>6}")
    for i in range(len(means["C"])):
        print(
            f"{means['C'][i]:9.3g} {means['N'][i]:9.3g} {means['D'][i]:9.3g} "
            f"{means['loss'][i]:8.4f} {means['nll'][i]:7.4f} {means['accuracy'][i]:6.3f}"
        )
    print(json.dumps(result.results, indent=1, default=float))
    print(f"plots: {out / 'isoflops.png'}, {out / 'forecast.png'}; results: {out / 'results.json'}")


if __name__ == "__main__":
    main()
