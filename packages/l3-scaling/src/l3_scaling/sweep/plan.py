"""Planning a sweep: model shapes and whole-step token counts per budget.

The plan is a pure function of the sweep config, so ``plan``, ``run`` and ``collect`` (and a
cluster's array tasks) all see the same runs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l3_core import ModelArgs
from l3_scaling.errors import SweepError
from l3_scaling.flops import scaling_params
from l3_scaling.sweep.config import SweepConfig


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the sweep."""

    name: str
    budget: float
    seed: int
    flops: float
    params: int
    tokens: int
    steps: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    run_dir: Path
    config_path: Path

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}


def shape_ladder(cfg: SweepConfig) -> list[ModelArgs]:
    """Every shape the planner may pick: the base preset's GQA ratio and head size (or
    ``cfg.head_dim``), with ``dim = head_dim * n_heads`` and 1..max_layers layers."""
    base = ModelArgs.from_preset(cfg.base_preset, **cfg.model_overrides())
    group = base.n_heads // base.kv_heads
    head_dim = cfg.head_dim or base.head_dim
    shapes = []
    for n_heads in range(group, cfg.max_heads + 1, group):
        for n_layers in range(1, cfg.max_layers + 1):
            shapes.append(
                base.replace(
                    dim=head_dim * n_heads,
                    n_heads=n_heads,
                    n_kv_heads=n_heads // group,
                    n_layers=n_layers,
                )
            )
    return shapes


def _pick(
    shapes: Sequence[ModelArgs],
    params: Sequence[int],
    target: float,
    aspect: float,
    taken: Sequence[int],
    min_gap: float,
) -> int | None:
    """The shape closest to ``target`` parameters (preferring the aspect ratio) whose size is
    at least ``min_gap`` decades from every size already taken, or None. Small ladders are
    coarse (the embedding dominates N), and near-equal sizes make a poor parabola."""

    def cost(i: int) -> float:
        s = shapes[i]
        return (math.log(params[i] / target)) ** 2 + 0.05 * math.log(
            s.dim / s.n_layers / aspect
        ) ** 2

    free = [
        i
        for i in range(len(shapes))
        if all(abs(math.log10(params[i] / params[j])) >= min_gap for j in taken)
    ]
    return min(free, key=cost) if free else None


def run_name(budget: float, dim: int, n_layers: int, n_heads: int, seed: int) -> str:
    """The run's directory name: budget, shape and (other than seed 0) the seed; a run planned
    twice (by two passes) has one name, so it is trained once."""
    name = f"C{budget:.2e}_d{dim}_l{n_layers}_h{n_heads}".replace("+", "")
    return f"{name}_s{seed}" if seed else name


def plan_sweep(cfg: SweepConfig, centres: Mapping[float, float] | None = None) -> list[PlannedRun]:
    """Shapes and token counts for every budget and seed; FLOPs come from
    ``ModelArgs.flops_per_token``.

    Each budget's sizes are centred on ``centres[budget]`` parameters when given (a first
    pass's estimate, :func:`l3_scaling.sweep.centre.centres_from_runs`), else on the prior
    sqrt(C / (6 tokens_per_param)).

    Token counts are whole optimizer steps, so a run's FLOPs differ from its budget by the
    rounding (recorded as ``flops``). Sizes that would train for fewer than ``min_steps``
    steps are dropped with a warning naming the budget.
    """
    cfg.validate()
    shapes = shape_ladder(cfg)
    params = [scaling_params(s) for s in shapes]
    tokens_per_step = cfg.global_batch_size * cfg.seq_len
    out_dir = Path(cfg.out_dir)
    runs: list[PlannedRun] = []
    for budget in sorted(cfg.budgets):
        centre = (
            centres[budget]
            if centres is not None
            else math.sqrt(budget / (6.0 * cfg.tokens_per_param))
        )
        k = cfg.sizes_per_budget
        targets = [centre * 10 ** (cfg.decades * (i / (k - 1) - 0.5)) for i in range(k)]
        gap = 0.4 * cfg.decades / (k - 1)
        chosen: list[int] = []
        for t in targets:
            i = _pick(shapes, params, t, cfg.aspect_ratio, chosen, gap)
            if i is not None:
                chosen.append(i)
        kept = 0
        for i in sorted(chosen, key=lambda j: params[j]):
            s = shapes[i]
            fpt = s.flops_per_token(cfg.seq_len)
            steps = round(budget / (fpt * tokens_per_step))
            if steps < cfg.min_steps:
                warnings.warn(
                    f"budget C={budget:.3g}: dropping dim={s.dim} layers={s.n_layers} "
                    f"(N={params[i]:.3g}): {steps} steps < min_steps={cfg.min_steps}",
                    stacklevel=2,
                )
                continue
            tokens = steps * tokens_per_step
            for seed in cfg.seeds:
                name = run_name(budget, s.dim, s.n_layers, s.n_heads, seed)
                runs.append(
                    PlannedRun(
                        name=name,
                        budget=float(budget),
                        seed=seed,
                        flops=fpt * tokens,
                        params=params[i],
                        tokens=tokens,
                        steps=steps,
                        dim=s.dim,
                        n_layers=s.n_layers,
                        n_heads=s.n_heads,
                        n_kv_heads=s.kv_heads,
                        run_dir=out_dir / "runs" / name,
                        config_path=out_dir / "configs" / f"{name}.toml",
                    )
                )
            kept += 1
        if kept < 3:
            raise SweepError(
                f"budget C={budget:.3g}: only {kept} distinct model size(s) fit (need 3); raise "
                "the budget, widen decades, or lower min_steps / global_batch_size"
            )
    return runs
