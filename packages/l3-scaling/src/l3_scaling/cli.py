"""``l3-scaling``: fit scaling laws from a CSV of runs, plan and run sweeps.

l3-scaling fit-loss POINTS.csv --json [--plot OUT.png]
l3-scaling isoflops RUNS.csv --json [--target-flops C] [--plot OUT.png]
l3-scaling downstream NLL.csv FAMILY.csv --target-flops C --json [--plot OUT.png]
l3-scaling sweep plan|run|collect --config SWEEP.toml [--set key=value ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.exit_codes import ExitCode
from l3_scaling.errors import ParameterError

# Library parameter -> the flag that sets it, so that a bad value is reported as typed.
FLAGS = {
    "drop_highest": "--drop-highest",
    "n_bootstrap": "--bootstrap",
    "n_starts": "--n-starts",
    "level": "--level",
    "window_decades": "--window",
    "min_points": "--min-points",
    "budget_rtol": "--budget-rtol",
    "target_flops": "--target-flops",
}


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


def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument("--plot", type=Path, help="write a PNG plot here (needs l3-scaling[plot])")
    sp.add_argument("--level", type=float, default=0.95, help="interval level (0.95)")


def _check_target(a: argparse.Namespace) -> None:
    """A bad --target-flops is refused before the fit, not after minutes of it."""
    from l3_scaling.checks import positive

    if a.target_flops is not None:
        positive(a.target_flops, "target_flops")


# fit-loss ---------------------------------------------------------------------------------


def _configure_fit_loss(p: argparse.ArgumentParser) -> None:
    p.add_argument("points", type=Path, help="CSV with columns N,D,loss (C optional)")
    p.add_argument(
        "--drop-highest",
        type=int,
        default=5,
        help="exclude the K highest losses before fitting (Epoch's protocol: 5)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (1000)")
    p.add_argument(
        "--n-starts",
        type=int,
        default=32,
        help="L-BFGS starts from the best of Epoch's 4,500 grid points (0: all)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target-flops", type=float, help="also give the optimal N, D at this C")
    p.add_argument(
        "--allow-few-points",
        action="store_true",
        help="fit (with a warning) even with fewer than 10 points for 5 parameters",
    )
    _common(p)


def _fit_loss(a: argparse.Namespace) -> int:
    from l3_scaling.data import read_runs
    from l3_scaling.fits.parametric import PARAM_NAMES, fit_parametric

    _check_target(a)
    runs = read_runs(a.points)
    fit = fit_parametric(
        runs.N,
        runs.D,
        runs.loss,
        drop_highest=a.drop_highest,
        n_starts=a.n_starts,
        n_bootstrap=a.bootstrap,
        level=a.level,
        seed=a.seed,
        allow_few_points=a.allow_few_points,
        lines=runs.lines,
        source=runs.source,
    )
    out = fit.to_dict()
    out["excluded_lines"] = [int(runs.lines[i]) for i in fit.excluded_rows]
    del out["excluded_rows"]
    if a.target_flops is not None:
        out["target"] = fit.at_budget(a.target_flops)
    if a.plot:
        from l3_scaling.plots import plot_parametric

        out["plot"] = str(plot_parametric(fit, runs.N, runs.D, runs.loss, a.plot))
    if a.json:
        _print_json(out)
        return ExitCode.OK
    print(
        f"{runs.source}: {out['n_points']} points fitted, lines excluded: "
        f"{out['excluded_lines'] or 'none'}"
    )
    for k in PARAM_NAMES:
        ci = out.get("intervals", {}).get(k)
        extra = f"  [{ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""
        print(f"  {k:6s} {out[k]:.6g}{extra}")
    print(f"  N_opt ∝ C^{out['params_exponent']:.4f}, D_opt ∝ C^{out['tokens_exponent']:.4f}")
    if "target" in out:
        t = out["target"]
        print(f"  at C={t['C']:.3g}: N={t['N_opt']:.4g}, D={t['D_opt']:.4g}, loss={t['loss']:.4g}")
    return ExitCode.OK


# isoflops ---------------------------------------------------------------------------------


def _configure_isoflops(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, help="CSV with columns C,N,D,loss")
    p.add_argument("--target-flops", type=float, help="extrapolate to this budget")
    p.add_argument(
        "--window",
        type=float,
        default=0.5,
        help="fit each parabola within this many decades of tokens around its "
        "minimum (0: all points, the biased global parabola)",
    )
    p.add_argument(
        "--min-points",
        type=int,
        default=5,
        help="widen a window that holds fewer points than this (5)",
    )
    p.add_argument(
        "--budget-rtol",
        type=float,
        default=0.05,
        help="runs whose C differ by less than this share a budget (0.05)",
    )
    p.add_argument(
        "--skip-bad-budgets",
        action="store_true",
        help="warn and drop budgets without an interior minimum instead of failing",
    )
    _common(p)


def _isoflops(a: argparse.Namespace) -> int:
    from l3_scaling.data import read_runs
    from l3_scaling.fits.isoflops import fit_isoflops

    _check_target(a)
    runs = read_runs(a.runs, required=("C", "N", "D", "loss"))
    fit = fit_isoflops(
        runs,
        window_decades=None if a.window == 0 else a.window,
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
        return ExitCode.OK
    print(f"{'C':>10} {'D_opt':>10} {'N_opt':>10} {'loss':>8} {'D/N':>7} used")
    for b in out["budgets"]:
        print(
            f"{b['C']:10.3g} {b['D_opt']:10.4g} {b['N_opt']:10.4g} {b['loss_opt']:8.4f} "
            f"{b['tokens_per_param']:7.2f} {b['n_used']}/{b['n_points']}"
        )
    t, p = out["tokens_law"], out["params_law"]
    print(
        f"tokens: D* = {t['A']:.4g} C^{t['alpha']:.4f}  (alpha {a.level:.0%} CI "
        f"{t['alpha_interval'][0]:.4f}..{t['alpha_interval'][1]:.4f})"
    )
    print(f"params: N* = {p['A']:.4g} C^{p['alpha']:.4f}")
    if "target" in out:
        tg = out["target"]
        print(
            f"at C={tg['C']:.3g}: D* = {tg['D_opt']:.4g} tokens "
            f"[{tg['D_interval'][0]:.4g}, {tg['D_interval'][1]:.4g}], "
            f"N* = {tg['N_opt']:.4g} params"
        )
    return ExitCode.OK


# downstream -------------------------------------------------------------------------------


def _configure_downstream(p: argparse.ArgumentParser) -> None:
    p.add_argument("nll", type=Path, help="CSV with columns C,nll (compute-optimal models)")
    p.add_argument("family", type=Path, help="CSV with columns nll,accuracy (anchor family)")
    p.add_argument("--target-flops", type=float, required=True)
    p.add_argument(
        "--chance",
        type=float,
        default=0.25,
        help="accuracy of random guessing (the sigmoid's floor; 0.25)",
    )
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    _common(p)


def _downstream(a: argparse.Namespace) -> int:
    from l3_scaling.fits.downstream import fit_downstream, read_family, read_nll

    forecast = fit_downstream(
        read_nll(a.nll),
        read_family(a.family),
        a.target_flops,
        chance=a.chance,
        n_bootstrap=a.bootstrap,
        level=a.level,
        seed=a.seed,
    )
    out = forecast.to_dict()
    if a.plot:
        from l3_scaling.plots import plot_downstream

        out["plot"] = str(plot_downstream(forecast, a.plot))
    if a.json:
        _print_json(out)
        return ExitCode.OK
    print(
        f"at C={forecast.C:.3g}: NLL {forecast.nll:.4f} "
        f"[{forecast.nll_interval[0]:.4f}, {forecast.nll_interval[1]:.4f}], accuracy "
        f"{forecast.accuracy:.4f} [{forecast.accuracy_interval[0]:.4f}, "
        f"{forecast.accuracy_interval[1]:.4f}]"
    )
    return ExitCode.OK


# sweep ------------------------------------------------------------------------------------


def _sweep_plan(plan: list, cfg: Any) -> dict[str, Any]:
    from l3_scaling.sweep import write_sweep

    written = write_sweep(plan, cfg)
    return {
        "runs": [r.to_dict() for r in plan],
        "configs": [str(p) for p in written["configs"]],
        "slurm_script": str(written["slurm"]),
    }


def _sweep_run(plan: list, cfg: Any) -> dict[str, Any]:
    from l3_scaling.sweep import run_sweep, write_sweep

    write_sweep(plan, cfg)
    return {"runs_csv": str(run_sweep(plan, cfg, progress=True))}


def _sweep_collect(plan: list, cfg: Any) -> dict[str, Any]:
    from l3_scaling.sweep import collect

    return {"runs_csv": str(collect(plan, cfg))}


SWEEP_ACTIONS: dict[str, Callable[[list, Any], dict[str, Any]]] = {
    "plan": _sweep_plan,
    "run": _sweep_run,
    "collect": _sweep_collect,
}


def _configure_sweep(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=list(SWEEP_ACTIONS),
        help="plan: write configs; run: train unfinished runs; collect: runs.csv",
    )
    add_config_arguments(p, required=True)
    p.add_argument("--fit", action="store_true", help="fit the IsoFLOP laws after run or collect")
    _common(p)


def _fit_sweep(runs_csv: str, plot: Path | None) -> dict[str, Any]:
    from l3_scaling.data import read_runs
    from l3_scaling.fits.isoflops import fit_isoflops

    runs = read_runs(runs_csv, required=("C", "N", "D", "loss"))
    fit = fit_isoflops(runs, on_bad_budget="skip")
    out: dict[str, Any] = {"isoflops": fit.to_dict()}
    if plot:
        from l3_scaling.plots import plot_isoflops

        out["plot"] = str(plot_isoflops(fit, runs, plot))
    return out


def _sweep(a: argparse.Namespace) -> int:
    from l3_scaling.sweep import load_sweep, plan_sweep

    cfg = load_sweep(a.config, a.overrides)
    plan = plan_sweep(cfg)
    out = SWEEP_ACTIONS[a.action](plan, cfg)
    if a.fit and "runs_csv" in out:
        out.update(_fit_sweep(out["runs_csv"], a.plot))
    if a.json:
        _print_json(out)
    elif a.action == "plan":
        for r in plan:
            print(
                f"{r.name}: C={r.budget:.3g} N={r.params:.4g} D={r.tokens:.4g} "
                f"steps={r.steps} dim={r.dim} layers={r.n_layers}"
            )
        print(f"configs and Slurm array script in {cfg.out_dir}")
    else:
        for k, v in out.items():
            if k != "isoflops":
                print(f"{k}: {v}")
        if "isoflops" in out:
            print(f"tokens law: D* = {out['isoflops']['A']:.4g} C^{out['isoflops']['alpha']:.4f}")
    return ExitCode.OK


# ------------------------------------------------------------------------------------------


def _flagged(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Report a bad parameter under the flag that set it (``--window``, not window_decades)."""

    def wrapped(a: argparse.Namespace) -> int:
        try:
            return run(a)
        except ParameterError as e:
            if e.where or e.name not in FLAGS:
                raise
            raise e.renamed(FLAGS[e.name]) from None

    return wrapped


COMMANDS = [
    Command(
        "fit-loss",
        "fit L(N,D) = E + A/N^alpha + B/D^beta (Epoch's way)",
        _configure_fit_loss,
        _flagged(_fit_loss),
    ),
    Command(
        "isoflops",
        "IsoFLOP parabolas and the D*(C) = A C^alpha law",
        _configure_isoflops,
        _flagged(_isoflops),
    ),
    Command(
        "downstream",
        "two-stage benchmark forecast (NLL, then accuracy)",
        _configure_downstream,
        _flagged(_downstream),
    ),
    Command(
        "sweep",
        "plan, run or collect an IsoFLOP sweep of l3-core runs",
        _configure_sweep,
        _flagged(_sweep),
    ),
]


@contextlib.contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Warnings as ``warning: message`` lines on stderr, without source lines."""

    def show(message: Any, category: type, *_: Any, **__: Any) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def main(argv: Sequence[str] | None = None) -> int:
    # Overflow in exp() of far-off start points is expected and handled (the point loses).
    with _one_line_warnings(), np.errstate(over="ignore", under="ignore"):
        return run_cli("l3-scaling", COMMANDS, argv, description=__doc__, distribution="l3-scaling")


if __name__ == "__main__":
    sys.exit(main())
