"""The IsoFLOP method end to end on this CPU: plan a sweep, train every run with the real
``l3-core train`` (one subprocess per run), collect final validation losses, fit.

Ours: windowed parabolas (``window_decades=0.5``); peer: one global parabola per budget over
all its runs, on the same runs. Prints per-budget minima, the fitted tokens law of both, the
wall time, and writes the plot. Runs are resumable: rerunning skips finished runs.

  python benchmarks/bench_scaling_sweep.py [--out runs/bench-sweep] [--set budgets=[...]]
      [--widen 2e12=1.6]

``--widen C=DECADES`` widens one budget's sweep (what the fit asks for when a budget has no
interior minimum): the runs a plan over DECADES would add beyond that budget's current range
of sizes are appended; finished runs are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
import warnings
from pathlib import Path

from l3_scaling.data import read_runs
from l3_scaling.fits.isoflops import fit_isoflops
from l3_scaling.plots import plot_isoflops
from l3_scaling.sweep import load_sweep, plan_sweep, run_sweep, write_sweep

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "packages" / "l3-scaling" / "examples" / "cpu-sweep.toml"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--config", type=Path, default=EXAMPLE)
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-sweep")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--widen", action="append", default=[], metavar="C=DECADES")
    opts = p.parse_args()
    # The trainer of the interpreter running this script, wherever its console script lives.
    train = shutil.which("l3-core") or f"{sys.executable} -m l3_core.train"
    cfg = load_sweep(opts.config, [f"out_dir={opts.out}", *opts.set])
    if cfg.command == ["l3-core", "train"] and not shutil.which("l3-core"):
        cfg.command = train.split()
    plan = plan_sweep(cfg)
    for spec in opts.widen:
        budget, decades = (float(v) for v in spec.split("="))
        sizes = [r.params for r in plan if r.budget == budget]
        wide = plan_sweep(
            dataclasses.replace(
                cfg, budgets=[budget], decades=decades, sizes_per_budget=cfg.sizes_per_budget + 1
            )
        )
        added = [r for r in wide if r.params < min(sizes) or r.params > max(sizes)]
        print(f"widening C={budget:.2g}: adding {', '.join(r.name for r in added)}")
        plan += added
    write_sweep(plan, cfg)
    print(
        f"{len(plan)} runs over budgets {cfg.budgets}; configs and Slurm script in {cfg.out_dir}",
        flush=True,
    )
    t0 = time.perf_counter()
    table = run_sweep(plan, cfg, progress=True)
    wall = time.perf_counter() - t0
    runs = read_runs(table, required=("C", "N", "D", "loss"))
    print(f"sweep wall time {wall / 60:.1f} min (finished runs are skipped on a rerun)")
    print(f"{'C':>8} {'N':>9} {'D':>9} {'val_loss':>9}")
    for c, n, d, loss in zip(runs.C, runs.N, runs.D, runs.loss):
        print(f"{c:8.2g} {n:9.3g} {d:9.3g} {loss:9.4f}")
    fits = {}
    for name, window in (("windowed (ours)", 0.5), ("global parabola (peer)", None)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fits[name] = fit_isoflops(
                    runs, window_decades=window, on_bad_budget="skip", min_points=3
                )
            except Exception as e:  # report, do not hide: the figure is then missing
                print(f"{name}: no fit: {e}")
                continue
        for w in caught:
            print(f"  {name}: warning: {w.message}")
        f = fits[name]
        lo, hi = f.tokens_law.alpha_interval()
        print(
            f"{name}: D* = {f.tokens_law.A:.4g} C^{f.tokens_law.alpha:.3f} "
            f"(95% CI {lo:.3f}..{hi:.3f}), N* = {f.params_law.A:.4g} C^{f.params_law.alpha:.3f}, "
            f"budgets with interior minima: {len(f.budgets)}/{len(cfg.budgets)}"
        )
        for b in f.budgets:
            print(
                f"    C={b.C:.2g}: D*={b.D_opt:.3g} N*={b.N_opt:.3g} loss*={b.loss_opt:.4f} "
                f"D/N={b.D_opt / b.N_opt:.2f} ({len(b.used_lines)}/{b.n_points} runs in window)"
            )
    if "windowed (ours)" in fits:
        png = plot_isoflops(fits["windowed (ours)"], runs, Path(cfg.out_dir) / "isoflops.png")
        print(f"plot: {png}")


if __name__ == "__main__":
    main()
