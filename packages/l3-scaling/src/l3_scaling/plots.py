"""PNG plots: IsoFLOP parabolas and their minima, power laws with confidence bands, the
parametric law's frontier, and the NLL-to-accuracy sigmoid.

matplotlib is the optional extra ``l3-scaling[plot]``; without it every plot raises a
:class:`~l3_core.errors.DependencyError` saying what to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from l3_core.errors import DependencyError
from l3_core.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from l3_scaling.data import Runs
    from l3_scaling.fits.downstream import DownstreamForecast
    from l3_scaling.fits.isoflops import IsoFlopFit
    from l3_scaling.fits.parametric import ParametricFit


def _figure(ncols: int) -> Figure:
    try:
        import matplotlib
    except ImportError as e:
        raise DependencyError(
            "plots need matplotlib, which is not installed: pip install 'l3-scaling[plot]'"
        ) from e
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(5.5 * ncols, 4.2), layout="constrained")


def _no_minor_labels(ax) -> None:
    # A sweep within one decade gets crowded minor-tick labels (2x10^5, 3x10^5, ...).
    from matplotlib.ticker import NullFormatter

    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=120)
    return path


def plot_isoflops(fit: IsoFlopFit, runs: Runs, path: str | Path) -> Path:
    """Left: loss vs tokens per budget with the fitted parabolas and minima. Right: D*(C) and
    N*(C) with their power laws and confidence bands."""
    fig = _figure(2)
    from matplotlib import colormaps

    ax, ax2 = fig.subplots(1, 2)
    cmap = colormaps["viridis"]
    budgets = sorted(fit.budgets, key=lambda b: b.C)
    run_budgets = runs.C
    assert run_budgets is not None  # fit_isoflops refuses runs without C
    for i, b in enumerate(budgets):
        rgba = cmap(i / max(1, len(budgets) - 1))
        near = np.abs(np.log(run_budgets) - np.log(b.C)) < 0.05
        ax.scatter(runs.D[near], runs.loss[near], s=12, color=rgba, alpha=0.7)
        lo, hi = np.log10(runs.D[near].min()), np.log10(runs.D[near].max())
        x = np.linspace(lo, hi, 200)
        inside = (x >= np.log10(b.window[0])) & (x <= np.log10(b.window[1]))
        y = np.polyval(b.coeffs, x)
        ax.plot(10 ** x[inside], y[inside], color=rgba, lw=1.5, label=f"C={b.C:.2g}")
        ax.plot(10**x, y, color=rgba, lw=0.6, ls=":")
        ax.plot(b.D_opt, b.loss_opt, "x", color="red", ms=8, mew=2)
    ax.set_xscale("log")
    _no_minor_labels(ax)
    ax.set_xlabel("training tokens D")
    ax.set_ylabel("validation loss")
    ax.set_title("IsoFLOP parabolas (solid: fit window; x: minimum)")
    ax.legend(fontsize=7)

    Cs = np.array([b.C for b in budgets])
    grid = np.logspace(np.log10(Cs.min()) - 0.3, np.log10(Cs.max()) + 0.3, 100)
    for law, ys, name, color in (
        (fit.tokens_law, [b.D_opt for b in budgets], "tokens D*", "C0"),
        (fit.params_law, [b.N_opt for b in budgets], "params N*", "C1"),
    ):
        ax2.scatter(Cs, ys, color=color, zorder=3)
        ax2.plot(grid, law(grid), color=color, label=f"{name} = {law.A:.3g} C^{law.alpha:.3f}")
        if law.n > 2:
            lo, hi = law.band(grid, fit.level)
            ax2.fill_between(
                grid,
                lo,
                hi,
                color=color,
                alpha=0.2,
                label=f"{int(fit.level * 100)}% confidence band",
            )
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    _no_minor_labels(ax2)
    ax2.set_xlabel("compute C (FLOPs)")
    ax2.set_ylabel("compute-optimal value")
    ax2.set_title("Power laws through the minima")
    ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_parametric(
    fit: ParametricFit, N: np.ndarray, D: np.ndarray, loss: np.ndarray, path: str | Path
) -> Path:
    """Left: observed vs predicted loss. Right: loss vs compute with the law's compute-optimal
    frontier (and its bootstrap band)."""
    fig = _figure(2)
    ax, ax2 = fig.subplots(1, 2)
    pred = fit.law.loss(N, D)
    excluded = np.zeros(len(loss), bool)
    excluded[list(fit.excluded_rows)] = True
    ax.scatter(pred[~excluded], loss[~excluded], s=10, label="fitted points")
    if excluded.any():
        ax.scatter(pred[excluded], loss[excluded], s=14, marker="x", color="red", label="excluded")
    lim = [min(pred.min(), loss.min()), max(pred.max(), loss.max())]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("predicted loss")
    ax.set_ylabel("observed loss")
    law = fit.law
    ax.set_title(
        f"L = {law.E:.3g} + {law.A:.3g}/N^{law.alpha:.3f} + {law.B:.3g}/D^{law.beta:.3f}",
        fontsize=9,
    )
    ax.legend(fontsize=7)

    C = 6.0 * N * D
    ax2.scatter(C, loss, s=8, c=np.log10(N), cmap="viridis")
    grid = np.logspace(np.log10(C.min()), np.log10(C.max()) + 1, 100)
    n_opt, d_opt = law.optimal_allocation(grid)
    ax2.plot(grid, law.loss(n_opt, d_opt), "r", label="compute-optimal frontier (C = 6ND)")
    if fit.bootstrap is not None:
        from l3_scaling.fits.parametric import LossLaw

        frontiers = []
        for row in fit.bootstrap.samples[:: max(1, len(fit.bootstrap.samples) // 200)]:
            b = LossLaw(*row)
            frontiers.append(b.loss(*b.optimal_allocation(grid)))
        tail = 50.0 * (1.0 - fit.bootstrap.level)
        lo, hi = np.percentile(frontiers, [tail, 100 - tail], axis=0)
        ax2.fill_between(grid, lo, hi, color="r", alpha=0.2, label="bootstrap band")
    ax2.set_xscale("log")
    ax2.set_xlabel("compute C = 6ND (FLOPs)")
    ax2.set_ylabel("loss")
    ax2.legend(fontsize=7)
    return _save(fig, path)


def plot_downstream(forecast: DownstreamForecast, path: str | Path) -> Path:
    """Left: normalised NLL vs compute (stage 1). Right: accuracy vs NLL (stage 2 sigmoid),
    with the forecast point and its interval."""
    fig = _figure(2)
    ax, ax2 = fig.subplots(1, 2)
    s1, s2 = forecast.nll_law, forecast.sigmoid
    ax.scatter(s1.C, s1.nll, label="models")
    grid = np.logspace(
        np.log10(min(s1.C.min(), forecast.C)) - 0.2,
        np.log10(max(s1.C.max(), forecast.C)) + 0.2,
        100,
    )
    ax.plot(grid, s1(grid), "C0", label=f"NLL = {s1.A:.3g} C^{s1.alpha:.3f}")
    ax.errorbar(
        [forecast.C],
        [forecast.nll],
        yerr=[[forecast.nll - forecast.nll_interval[0]], [forecast.nll_interval[1] - forecast.nll]],
        fmt="o",
        color="red",
        label="forecast",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("normalised NLL of the correct answer")
    ax.legend(fontsize=7)

    ax2.scatter(s2.nll, s2.accuracy, color="C1", label="anchor family")
    x = np.linspace(
        min(s2.nll.min(), forecast.nll) * 0.9, max(s2.nll.max(), forecast.nll) * 1.1, 200
    )
    ax2.plot(x, s2(x), "C1", label="sigmoid fit")
    ax2.errorbar(
        [forecast.nll],
        [forecast.accuracy],
        yerr=[
            [forecast.accuracy - forecast.accuracy_interval[0]],
            [forecast.accuracy_interval[1] - forecast.accuracy],
        ],
        fmt="o",
        color="red",
        label=f"forecast at C={forecast.C:.2g}",
    )
    ax2.set_xlabel("normalised NLL")
    ax2.set_ylabel("accuracy")
    ax2.legend(fontsize=7)
    return _save(fig, path)


def _err(centre: float, interval: list[float]) -> list[list[float]]:
    return [[centre - interval[0]], [interval[1] - centre]]


def plot_heldout(results: dict, path: str | Path) -> Path:
    """The prediction against the held-out runs, from ``results.json``
    (:mod:`l3_scaling.sweep.pipeline`): loss*(C), N*(C), the NLL of the correct cloze
    answer vs compute, and cloze accuracy vs that NLL (the sigmoid). Red: predicted before
    training, with the 95% interval; black: measured afterwards."""
    fig = _figure(4)
    axes = fig.subplots(1, 4)
    pred, meas = results["prediction"], results["measured"]
    fitted = pred["fitted"]
    budgets = fitted["isoflops"]["budgets"]
    Cs = np.array([b["C"] for b in budgets])
    C_h = pred["C"]
    grid = np.logspace(np.log10(Cs.min()) - 0.2, np.log10(C_h) + 0.2, 100)
    down = pred["downstream"]
    panels = (
        (
            "loss*",
            [b["loss_opt"] for b in budgets],
            fitted["loss_law"],
            "loss_opt",
            "loss_interval",
            meas["loss_at_predicted_N"],
            "validation loss",
        ),
        (
            "N*",
            [b["N_opt"] for b in budgets],
            fitted["isoflops"]["params_law"],
            "N_opt",
            "N_interval",
            meas["N_opt_vertex"],
            "compute-optimal parameters",
        ),
        (
            "NLL",
            fitted["stage1_points"]["nll"],
            down["stage1"],
            None,
            None,
            meas["nll"],
            "NLL of the correct cloze answer",
        ),
    )
    for ax, (name, ys, law, key, ikey, measured, ylabel) in zip(axes, panels):
        ax.scatter(Cs, ys, color="C0", zorder=3, label="fitted budgets")
        ax.plot(
            grid,
            law["A"] * grid ** law["alpha"],
            "C0",
            label=f"{name} = {law['A']:.3g} C^{law['alpha']:.3f}",
        )
        centre = pred[key] if key else down["nll"]
        interval = pred[ikey] if ikey else down["nll_interval"]
        ax.errorbar(
            [C_h],
            [centre],
            yerr=_err(centre, interval),
            fmt="o",
            color="red",
            capsize=3,
            label="predicted (95%)",
        )
        ax.plot([C_h], [measured], "kx", ms=9, mew=2, label="measured")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _no_minor_labels(ax)
        ax.set_xlabel("compute C (FLOPs)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    ax = axes[3]
    fam = fitted["family_points"]
    s2 = down["stage2"]
    nll = np.asarray(fam["nll"])
    x = np.linspace(min(nll.min(), meas["nll"]) * 0.95, max(nll.max(), meas["nll"]) * 1.05, 200)
    sig = s2["chance"] + (s2["top"] - s2["chance"]) / (1 + np.exp(s2["k"] * (x - s2["x0"])))
    ax.scatter(nll, fam["accuracy"], color="C1", s=12, label="sweep runs")
    ax.plot(x, sig, "C1", label="sigmoid fit")
    ax.errorbar(
        [down["nll"]],
        [down["accuracy"]],
        yerr=_err(down["accuracy"], down["accuracy_interval"]),
        fmt="o",
        color="red",
        capsize=3,
        label="forecast (95%)",
    )
    ax.plot([meas["nll"]], [meas["accuracy"]], "kx", ms=9, mew=2, label="measured")
    ax.set_xlabel("NLL of the correct cloze answer")
    ax.set_ylabel("cloze accuracy")
    ax.legend(fontsize=7)
    return _save(fig, path)
