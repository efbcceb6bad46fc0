"""``l3-scaling``: fit scaling laws from a CSV of runs, plan and run sweeps.

  l3-scaling fit-loss POINTS.csv --json [--plot OUT.png]
  l3-scaling isoflops RUNS.csv --json [--target-flops C] [--plot OUT.png]
  l3-scaling downstream NLL.csv FAMILY.csv --target-flops C --json [--plot OUT.png]
  l3-scaling sweep plan|run|collect SWEEP.toml [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.errors import L3Error


def _finite(obj: Any) -> Any:
    """NaN/inf (e.g. the interval of a law through two budgets) become JSON null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _print_json(obj: Any) -> None:
    print(json.dumps(_finite(obj), indent=2, allow_nan=False))


def _fit_loss(a: argparse.Namespace) -> None:
    from l3_scaling.data import read_runs
    from l3_scaling.fits.parametric import PARAM_NAMES, fit_parametric

    runs = read_runs(a.points)
    fit = fit_parametric(
        runs.N,
        runs.D,
        runs.loss,
        drop_highest=a.drop_highest,
        n_starts=a.n_starts or None,
        n_bootstrap=a.bootstrap,
        level=a.level,
        seed=a.seed,
    )
    out = fit.to_dict()
    out["excluded_lines"] = [int(runs.lines[i]) for i in fit.excluded_rows]
    del out["excluded_rows"]
    if a.target_flops:
        n_opt, d_opt = fit.law.optimal_allocation(a.target_flops)
        out["target"] = {"C": a.target_flops, "N_opt": float(n_opt), "D_opt": float(d_opt),
                         "loss": float(fit.law.loss(n_opt, d_opt))}
    if a.plot:
        from l3_scaling.plots import plot_parametric

        out["plot"] = str(plot_parametric(fit, runs.N, runs.D, runs.loss, a.plot))
    if a.json:
        _print_json(out)
        return
    print(f"{runs.source}: {out['n_points']} points fitted, lines excluded: "
          f"{out['excluded_lines'] or 'none'}")
    for k in PARAM_NAMES:
        ci = out.get("intervals", {}).get(k)
        extra = f"  [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
        print(f"  {k:6s} {out[k]:.6g}{extra}")
    print(f"  N_opt ∝ C^{out['params_exponent']:.4f}, D_opt ∝ C^{out['tokens_exponent']:.4f}")
    if "target" in out:
        t = out["target"]
        print(f"  at C={t['C']:.3g}: N={t['N_opt']:.4g}, D={t['D_opt']:.4g}, loss={t['loss']:.4g}")


def _isoflops(a: argparse.Namespace) -> None:
    from l3_scaling.data import read_runs
    from l3_scaling.fits.isoflops import fit_isoflops

    runs = read_runs(a.runs, required=("C", "N", "D", "loss"))
    fit = fit_isoflops(
        runs,
        window_decades=a.window or None,
        min_points=a.min_points,
        budget_rtol=a.budget_rtol,
        on_bad_budget="skip" if a.skip_bad_budgets else "raise",
        level=a.level,
    )
    out = fit.to_dict(a.target_flops)
    if a.plot:
        from l3_scaling.plots import plot_isoflops

        out["plot"] = str(plot_isoflops(fit, runs, a.plot))
    if a.json:
        _print_json(out)
        return
    print(f"{'C':>10} {'D_opt':>10} {'N_opt':>10} {'loss':>8} {'D/N':>7} used")
    for b in out["budgets"]:
        print(f"{b['C']:10.3g} {b['D_opt']:10.4g} {b['N_opt']:10.4g} {b['loss_opt']:8.4f} "
              f"{b['tokens_per_param']:7.2f} {b['n_used']}/{b['n_points']}")
    t, p = out["tokens_law"], out["params_law"]
    print(f"tokens: D* = {t['A']:.4g} C^{t['alpha']:.4f}  (alpha {a.level:.0%} CI "
          f"{t['alpha_interval'][0]:.4f}..{t['alpha_interval'][1]:.4f})")
    print(f"params: N* = {p['A']:.4g} C^{p['alpha']:.4f}")
    if "target" in out:
        tg = out["target"]
        print(f"at C={tg['C']:.3g}: D* = {tg['D_opt']:.4g} tokens "
              f"[{tg['D_interval'][0]:.4g}, {tg['D_interval'][1]:.4g}], "
              f"N* = {tg['N_opt']:.4g} params")


def _downstream(a: argparse.Namespace) -> None:
    from l3_scaling.fits.downstream import fit_downstream, read_family, read_nll

    nll = read_nll(a.nll)
    family = read_family(a.family)
    forecast = fit_downstream(nll, family, a.target_flops, chance=a.chance,
                              n_bootstrap=a.bootstrap, level=a.level, seed=a.seed)
    out = forecast.to_dict()
    if a.plot:
        from l3_scaling.plots import plot_downstream

        out["plot"] = str(plot_downstream(forecast, a.plot))
    if a.json:
        _print_json(out)
        return
    print(f"at C={forecast.C:.3g}: NLL {forecast.nll:.4f} "
          f"[{forecast.nll_interval[0]:.4f}, {forecast.nll_interval[1]:.4f}], accuracy "
          f"{forecast.accuracy:.4f} [{forecast.accuracy_interval[0]:.4f}, "
          f"{forecast.accuracy_interval[1]:.4f}]")


def _sweep(a: argparse.Namespace) -> None:
    from l3_scaling.sweep import collect, load_sweep, plan_sweep, run_sweep, write_sweep

    cfg = load_sweep(a.config, a.set)
    plan = plan_sweep(cfg)
    if a.action == "plan":
        written = write_sweep(plan, cfg)
        out: dict[str, Any] = {
            "runs": [r.to_dict() for r in plan],
            "configs": [str(p) for p in written["configs"]],
            "slurm_script": str(written["slurm"]),
        }
    elif a.action == "run":
        write_sweep(plan, cfg)
        table = run_sweep(plan, cfg, progress=True)
        out = {"runs_csv": str(table)}
    else:
        out = {"runs_csv": str(collect(plan, cfg))}
    if a.action in ("run", "collect") and a.fit:
        from l3_scaling.data import read_runs
        from l3_scaling.fits.isoflops import fit_isoflops

        runs = read_runs(out["runs_csv"], required=("C", "N", "D", "loss"))
        fit = fit_isoflops(runs, on_bad_budget="skip")
        out["isoflops"] = fit.to_dict()
        if a.plot:
            from l3_scaling.plots import plot_isoflops

            out["plot"] = str(plot_isoflops(fit, runs, a.plot))
    if a.json:
        _print_json(out)
    elif a.action == "plan":
        for r in plan:
            print(f"{r.name}: C={r.budget:.3g} N={r.params:.4g} D={r.tokens:.4g} "
                  f"steps={r.steps} dim={r.dim} layers={r.n_layers}")
        print(f"configs and Slurm array script in {cfg.out_dir}")
    else:
        for k, v in out.items():
            if k != "isoflops":
                print(f"{k}: {v}")
        if "isoflops" in out:
            print(f"tokens law: D* = {out['isoflops']['A']:.4g} C^{out['isoflops']['alpha']:.4f}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="l3-scaling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true", help="print one JSON object")
        sp.add_argument("--plot", type=Path, help="write a PNG plot here")
        sp.add_argument("--level", type=float, default=0.95, help="interval level (0.95)")

    fl = sub.add_parser("fit-loss", help="fit L(N,D) = E + A/N^alpha + B/D^beta (Epoch's way)")
    fl.add_argument("points", type=Path, help="CSV with columns N,D,loss (C optional)")
    fl.add_argument("--drop-highest", type=int, default=5,
                    help="exclude the K highest losses before fitting (Epoch's protocol: 5)")
    fl.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    fl.add_argument("--n-starts", type=int, default=32,
                    help="L-BFGS starts from the best of Epoch's 4,500 grid points (0: all)")
    fl.add_argument("--seed", type=int, default=0)
    fl.add_argument("--target-flops", type=float, help="also give the optimal N, D at this C")
    common(fl)
    fl.set_defaults(func=_fit_loss)

    iso = sub.add_parser("isoflops", help="IsoFLOP parabolas and the D*(C) = A C^alpha law")
    iso.add_argument("runs", type=Path, help="CSV with columns C,N,D,loss")
    iso.add_argument("--target-flops", type=float, help="extrapolate to this budget")
    iso.add_argument("--window", type=float, default=0.5,
                     help="fit each parabola within this many decades of tokens around its "
                          "minimum (0: all points, the biased global parabola)")
    iso.add_argument("--min-points", type=int, default=5,
                     help="widen a window that holds fewer points than this (5)")
    iso.add_argument("--budget-rtol", type=float, default=0.05,
                     help="runs whose C differ by less than this share a budget (0.05)")
    iso.add_argument("--skip-bad-budgets", action="store_true",
                     help="warn and drop budgets without an interior minimum instead of failing")
    common(iso)
    iso.set_defaults(func=_isoflops)

    ds = sub.add_parser("downstream", help="two-stage benchmark forecast (NLL, then accuracy)")
    ds.add_argument("nll", type=Path, help="CSV with columns C,nll (compute-optimal models)")
    ds.add_argument("family", type=Path, help="CSV with columns nll,accuracy (anchor family)")
    ds.add_argument("--target-flops", type=float, required=True)
    ds.add_argument("--chance", type=float, default=0.25,
                    help="accuracy of random guessing (the sigmoid's floor; 0.25)")
    ds.add_argument("--bootstrap", type=int, default=1000)
    ds.add_argument("--seed", type=int, default=0)
    common(ds)
    ds.set_defaults(func=_downstream)

    sw = sub.add_parser("sweep", help="plan, run or collect an IsoFLOP sweep of l3-core runs")
    sw.add_argument("action", choices=["plan", "run", "collect"])
    sw.add_argument("config", type=Path, help="sweep TOML (see the README)")
    sw.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a sweep key, e.g. --set budgets=[1e12,3e12]")
    sw.add_argument("--fit", action="store_true", help="fit the IsoFLOP laws afterwards")
    common(sw)
    sw.set_defaults(func=_sweep)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    def show(message: Any, category: type, *_: Any, **__: Any) -> None:
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    np.seterr(over="ignore", under="ignore")
    try:
        args.func(args)
    except L3Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
