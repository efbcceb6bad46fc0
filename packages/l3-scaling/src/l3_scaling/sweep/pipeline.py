"""The IsoFLOP method end to end, with a prediction checked by a run trained afterwards.

1. First pass: ``first_pass_sizes`` sizes per budget over ``first_pass_decades`` around the
   prior optimum, one seed; :mod:`l3_scaling.sweep.centre` turns it into each budget's centre.
2. The sweep: ``sizes_per_budget`` sizes per budget around those centres, every seed of
   ``seeds``; losses are averaged over seeds, and the seed-to-seed spread (noise) is set
   against each parabola's rise half a decade from its vertex (curvature).
3. Fit: windowed IsoFLOP parabolas, D*(C) and N*(C), loss*(C) as a power law; the cloze task
   scored on every run gives stage 1 (NLL of the correct answer vs compute) and stage 2
   (accuracy vs NLL, a sigmoid) of the downstream forecast.
4. Prediction: N*, D*, loss* and accuracy at ``heldout_factor`` times the largest budget,
   written to ``results.json`` (:mod:`l3_scaling.sweep.heldout`) before step 5 starts.
5. The held-out runs: the ladder shape nearest the predicted N* (every seed) and its
   neighbours ``heldout_decades`` either side (first seed); their measured loss, vertex and
   accuracy are recorded next to the prediction with the errors.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.config import apply_overrides, from_dict, read_toml
from l3_core.errors import ConfigError
from l3_scaling import checks
from l3_scaling.cloze import ClozeTask, score_run
from l3_scaling.errors import SweepError
from l3_scaling.fits.downstream import fit_downstream
from l3_scaling.fits.isoflops import IsoFlopFit, PowerLaw, fit_isoflops, runs_from_arrays
from l3_scaling.sweep.centre import budget_vertex, centres_from_runs, centres_table
from l3_scaling.sweep.config import SweepConfig
from l3_scaling.sweep.files import write_sweep
from l3_scaling.sweep.heldout import (
    existing_prediction,
    record_measurement,
    relative_error,
    write_prediction,
)
from l3_scaling.sweep.plan import PlannedRun, plan_sweep, run_name
from l3_scaling.sweep.runner import run_sweep
from l3_scaling.trainer_contract import final_val_loss

log = logging.getLogger(__name__)


@dataclass
class PipelineConfig:
    """The ``[pipeline]`` table of a sweep TOML: the passes around the sweep itself."""

    first_pass_sizes: int = 3
    first_pass_decades: float = 1.2
    first_pass_stride: int = 2  # every second budget; the centring line fills in the others
    # Each budget's central size (and the held-out predicted one) again at these seeds: the
    # seed-to-seed spread is the noise set against the parabolas' curvature.
    noise_seeds: list[int] = field(default_factory=lambda: [1])
    # Times a budget whose best run is its smallest or largest is extended past that end.
    max_extensions: int = 2
    heldout_factor: float = 4.0  # the held-out budget over the largest fitted one
    heldout_decades: float = 0.4  # the held-out neighbours' distance from the predicted N*
    window_decades: float = 0.5
    cloze_items: int = 400
    n_bootstrap: int = 1000

    def validate(self, where: str = "") -> PipelineConfig:
        checks.check(
            {
                "pipeline.first_pass_sizes": (
                    self.first_pass_sizes,
                    self.first_pass_sizes >= 3,
                    ">= 3 (a vertex needs 3 sizes)",
                ),
                "pipeline.first_pass_stride": (
                    self.first_pass_stride,
                    self.first_pass_stride >= 1,
                    ">= 1",
                ),
                "pipeline.first_pass_decades": (
                    self.first_pass_decades,
                    self.first_pass_decades > 0,
                    "> 0",
                ),
                "pipeline.heldout_factor": (
                    self.heldout_factor,
                    self.heldout_factor > 1,
                    "> 1 (the held-out budget lies above the fitted ones)",
                ),
                "pipeline.heldout_decades": (self.heldout_decades, self.heldout_decades > 0, "> 0"),
                "pipeline.window_decades": (self.window_decades, self.window_decades > 0, "> 0"),
                "pipeline.noise_seeds": (
                    self.noise_seeds,
                    all(isinstance(x, int) and x >= 0 for x in self.noise_seeds),
                    "a list of integers >= 0",
                ),
                "pipeline.max_extensions": (self.max_extensions, self.max_extensions >= 0, ">= 0"),
                "pipeline.cloze_items": (self.cloze_items, self.cloze_items >= 10, ">= 10"),
                "pipeline.n_bootstrap": (self.n_bootstrap, self.n_bootstrap >= 1, ">= 1"),
            },
            where,
        )
        return self


def load_pipeline(
    path: str | Path, overrides: Sequence[str] = ()
) -> tuple[SweepConfig, PipelineConfig]:
    """A sweep TOML with a ``[pipeline]`` table (``--set pipeline.x=...`` works too)."""
    data = apply_overrides(read_toml(path), overrides)
    table = data.pop("pipeline", {})
    try:
        sweep = from_dict(SweepConfig, data)
        pipe = from_dict(PipelineConfig, table, "pipeline")
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return sweep.validate(str(path)), pipe.validate(str(path))


@dataclass
class Stage:
    """What a stage trained and how long it took (for the report)."""

    name: str
    runs: int
    trained: int


@dataclass
class PipelineResult:
    results: dict[str, Any]
    fit: IsoFlopFit
    means: dict[str, np.ndarray]
    stages: list[Stage] = field(default_factory=list)


def _losses(plan: Sequence[PlannedRun]) -> dict[str, float]:
    out = {}
    for run in plan:
        loss = final_val_loss(run.run_dir, run.steps)
        if loss is None:
            raise SweepError(f"{run.name}: unfinished after its stage")
        out[run.name] = loss
    return out


def _train(plan: list[PlannedRun], cfg: SweepConfig, name: str, stages: list[Stage]) -> None:
    from l3_scaling.sweep.runner import unfinished

    todo = len(unfinished(plan))
    write_sweep(plan, cfg, name)
    run_sweep(plan, cfg, progress=True, table=f"{name}-runs.csv")
    stages.append(Stage(name, len({r.name for r in plan}), todo))


def seed_means(
    plan: Sequence[PlannedRun], values: dict[str, dict[str, float]]
) -> tuple[dict[str, np.ndarray], float]:
    """Per (budget, shape): C, N, D and the seed mean of every value (``values[run name]``);
    and the pooled seed-to-seed standard deviation of ``loss`` (NaN with one seed)."""
    groups: dict[tuple[float, int, int], list[PlannedRun]] = defaultdict(list)
    for run in plan:
        groups[(run.budget, run.params, run.tokens)].append(run)
    cols: dict[str, list[float]] = defaultdict(list)
    variances = []
    for (C, N, D), runs in sorted(groups.items()):
        cols["C"].append(C)
        cols["N"].append(N)
        cols["D"].append(D)
        for key in values[runs[0].name]:
            cols[key].append(float(np.mean([values[r.name][key] for r in runs])))
        if len(runs) > 1:
            variances.append(float(np.var([values[r.name]["loss"] for r in runs], ddof=1)))
    noise = math.sqrt(float(np.mean(variances))) if variances else math.nan
    return {k: np.asarray(v) for k, v in cols.items()}, noise


def curvature(fit: IsoFlopFit, decades: float = 0.5) -> dict[float, float]:
    """Each budget's parabola's rise ``decades`` of tokens away from its vertex."""
    return {b.C: float(b.coeffs[0] * decades**2) for b in fit.budgets}


def optimal_nll(fit: IsoFlopFit, means: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 points: each budget's cloze NLL at its D*, from a parabola in log10 D through
    that budget's seed-mean NLLs (as the loss minimum is read from its parabola)."""
    Cs, nll = [], []
    for b in fit.budgets:
        sel = means["C"] == b.C
        coeffs = np.polyfit(np.log10(means["D"][sel]), means["nll"][sel], 2)
        Cs.append(b.C)
        nll.append(float(np.polyval(coeffs, np.log10(b.D_opt))))
    return np.asarray(Cs), np.asarray(nll)


def with_seeds(run: PlannedRun, seeds: Sequence[int], out_dir: Path) -> list[PlannedRun]:
    """``run`` again at each of ``seeds`` (its own seed left out)."""
    out = []
    for seed in seeds:
        if seed == run.seed:
            continue
        name = run_name(run.budget, run.dim, run.n_layers, run.n_heads, seed)
        out.append(
            dataclasses.replace(
                run,
                name=name,
                seed=seed,
                run_dir=out_dir / "runs" / name,
                config_path=out_dir / "configs" / f"{name}.toml",
            )
        )
    return out


def central_run(plan: Sequence[PlannedRun], budget: float, n_centre: float) -> PlannedRun:
    """The run of ``budget`` whose size is nearest ``n_centre`` (in log N)."""
    return min(
        (r for r in plan if r.budget == budget), key=lambda r: abs(math.log(r.params / n_centre))
    )


def edge_extension(
    plan: Sequence[PlannedRun], losses: dict[str, float], cfg: SweepConfig, step: float
) -> list[PlannedRun]:
    """Runs that extend every budget whose lowest loss is at its smallest or largest size by
    sizes beyond that end (a sweep centred too far off has no interior minimum)."""
    extra: list[PlannedRun] = []
    for b in sorted({r.budget for r in plan}):
        runs = sorted((r for r in plan if r.budget == b), key=lambda r: r.params)
        sizes = [r.params for r in runs]
        best = min(runs, key=lambda r: losses[r.name]).params
        if best not in (sizes[0], sizes[-1]):
            continue
        shift = -step if best == sizes[0] else step
        wide = plan_sweep(
            dataclasses.replace(cfg, budgets=[b], seeds=[runs[0].seed]),
            {b: best * 10**shift},
        )
        extra += [r for r in wide if r.params < sizes[0] or r.params > sizes[-1]]
    return extra


def _heldout_plan(
    cfg: SweepConfig, pipe: PipelineConfig, budget: float, n_opt: float
) -> tuple[list[PlannedRun], PlannedRun]:
    """The ladder shapes nearest N* and N* x 10^(+-heldout_decades) at ``budget``, and the
    one nearest N* again at every noise seed."""
    one = dataclasses.replace(
        cfg, budgets=[budget], sizes_per_budget=3, decades=2 * pipe.heldout_decades
    )
    plan = plan_sweep(one, {budget: n_opt})
    centre = central_run(plan, budget, n_opt)
    return plan + with_seeds(centre, pipe.noise_seeds, Path(cfg.out_dir)), centre


def predict(
    fit: IsoFlopFit,
    loss_law: PowerLaw,
    budget: float,
    forecast: dict[str, Any],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """The prediction at ``budget``: N*, D*, loss* with intervals, and the forecast."""
    target = fit.extrapolate(budget)
    lo, hi = loss_law.band(budget, fit.level)
    return {
        "C": budget,
        "N_opt": target["N_opt"],
        "N_interval": target["N_interval"],
        "D_opt": target["D_opt"],
        "D_interval": target["D_interval"],
        "loss_opt": float(loss_law(budget)),
        "loss_interval": [float(lo), float(hi)],
        "downstream": forecast,
        **extra,
    }


Scorer = Callable[[PlannedRun], dict[str, float]]


def cloze_scorer(task: ClozeTask) -> Scorer:
    """Score a finished run's checkpoint on ``task`` (cached in the run directory)."""
    return lambda run: score_run(run.run_dir, task)


def run_pipeline(
    cfg: SweepConfig, pipe: PipelineConfig, scorer: Scorer, chance: float
) -> PipelineResult:
    """Steps 1-5 of the module docstring; every stage resumes (finished runs are skipped).
    ``scorer`` gives a finished run's downstream ``nll`` and ``accuracy`` (chance level
    ``chance``): :func:`cloze_scorer` for real runs."""
    stages: list[Stage] = []
    out_dir = Path(cfg.out_dir)
    first_cfg = dataclasses.replace(
        cfg,
        budgets=sorted(cfg.budgets)[:: pipe.first_pass_stride],
        sizes_per_budget=pipe.first_pass_sizes,
        decades=pipe.first_pass_decades,
    )
    first = plan_sweep(first_cfg)
    _train(first, first_cfg, "pass1", stages)
    first_loss = _losses(first)
    centres = centres_from_runs(
        [r.budget for r in first],
        [r.params for r in first],
        [first_loss[r.name] for r in first],
        cfg.budgets,
    )
    log.info("centres: %s", centres)

    sweep = plan_sweep(cfg, centres)
    sweep += [
        extra
        for b in cfg.budgets
        for extra in with_seeds(central_run(sweep, b, centres[b]), pipe.noise_seeds, out_dir)
    ]
    _train(sweep, cfg, "sweep", stages)
    losses = _losses(sweep)
    for _ in range(pipe.max_extensions):
        extra = edge_extension(sweep, losses, cfg, cfg.decades / 2)
        if not extra:
            break
        sweep += extra
        _train(sweep, cfg, "sweep", stages)
        losses = _losses(sweep)
    values = {
        name: {"loss": loss, **scorer(run)}
        for run in sweep
        for name, loss in [(run.name, losses[run.name])]
    }
    means, noise = seed_means(sweep, values)
    fit = fit_isoflops(
        runs_from_arrays(means["C"], means["N"], means["D"], means["loss"]),
        window_decades=pipe.window_decades,
        min_points=3,
        on_bad_budget="skip",
    )
    Cs = np.array([b.C for b in fit.budgets])
    loss_law = PowerLaw.fit(Cs, np.array([b.loss_opt for b in fit.budgets]))
    stage1 = optimal_nll(fit, means)
    heldout_budget = max(cfg.budgets) * pipe.heldout_factor
    forecast = fit_downstream(
        stage1,
        (means["nll"], means["accuracy"]),
        heldout_budget,
        chance=chance,
        n_bootstrap=pipe.n_bootstrap,
    )
    curv = curvature(fit, 0.5)
    n_seeds = len(set(cfg.seeds) | set(pipe.noise_seeds))
    fitted = {
        "budgets": cfg.budgets,
        "centres": centres_table(centres),
        "isoflops": fit.to_dict(),
        "loss_law": loss_law.to_dict(fit.level),
        "noise": {
            "seed_sd": noise,
            "seeds_at_centres": n_seeds,
            "curvature_at_half_decade": {f"{c:.3g}": v for c, v in curv.items()},
            "min_curvature_over_noise": min(curv.values()) / noise if n_seeds > 1 else None,
        },
        "stage1_points": {"C": stage1[0].tolist(), "nll": stage1[1].tolist()},
        "family_points": {"nll": means["nll"].tolist(), "accuracy": means["accuracy"].tolist()},
    }
    prediction = existing_prediction(out_dir)
    if prediction is None:
        prediction = predict(fit, loss_law, heldout_budget, forecast.to_dict(), {"fitted": fitted})
        write_prediction(cfg.out_dir, prediction)
    else:
        log.info("keeping the prediction already in %s/results.json", out_dir)
        heldout_budget = float(prediction["C"])

    held, centre = _heldout_plan(cfg, pipe, heldout_budget, prediction["N_opt"])
    _train(held, cfg, "heldout", stages)
    held_loss = _losses(held)
    at_centre = [r for r in held if r.params == centre.params]
    centre_loss = float(np.mean([held_loss[r.name] for r in at_centre]))
    centre_scores = [scorer(r) for r in at_centre]
    first_seed = sorted(
        {r.params: r for r in held if r.seed == centre.seed}.values(), key=lambda r: r.params
    )
    vertex_n = budget_vertex(
        [r.params for r in first_seed], [held_loss[r.name] for r in first_seed]
    )
    measured: dict[str, Any] = {
        "C": heldout_budget,
        "runs": [
            {
                "name": r.name,
                "N": r.params,
                "D": r.tokens,
                "seed": r.seed,
                "loss": held_loss[r.name],
            }
            for r in held
        ],
        "N_centre_run": centre.params,
        "D_centre_run": centre.tokens,
        "loss_at_predicted_N": centre_loss,
        "N_opt_vertex": vertex_n,
        "accuracy": float(np.mean([s["accuracy"] for s in centre_scores])),
        "nll": float(np.mean([s["nll"] for s in centre_scores])),
        "seeds_at_centre": len(at_centre),
    }
    acc_lo, acc_hi = prediction["downstream"]["accuracy_interval"]
    errors = {
        "loss_relative": relative_error(prediction["loss_opt"], centre_loss),
        "loss_in_interval": prediction["loss_interval"][0]
        <= centre_loss
        <= prediction["loss_interval"][1],
        "N_opt_log10_error": math.log10(prediction["N_opt"] / vertex_n),
        "accuracy_error": prediction["downstream"]["accuracy"] - measured["accuracy"],
        "accuracy_in_interval": acc_lo <= measured["accuracy"] <= acc_hi,
        "nll_relative": relative_error(prediction["downstream"]["nll"], measured["nll"]),
    }
    path = record_measurement(cfg.out_dir, measured, errors)
    log.info("results: %s", path)
    results = {"prediction": prediction, "measured": measured, "errors": errors}
    return PipelineResult(results, fit, means, stages)
