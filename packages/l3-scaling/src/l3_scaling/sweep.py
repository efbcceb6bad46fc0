"""IsoFLOP sweeps of l3-core runs: plan shapes and token counts per budget, write training
configs (and a Slurm array script), run them one after another, collect final losses.

The plan is a pure function of the sweep config, so ``plan``, ``run`` and ``collect`` (and a
cluster's array tasks) all see the same runs. A run counts as done once its ``metrics.jsonl``
ends with a ``val_loss`` at its last step; ``run`` skips done runs, so an interrupted sweep
resumes where it stopped, and ``runs.csv`` is rewritten atomically after every run.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import shlex
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from l3_core import ModelArgs
from l3_core.config import load_config
from l3_core.io import atomic_write
from l3_scaling.errors import SweepError
from l3_scaling.flops import scaling_params

log = logging.getLogger(__name__)


@dataclass
class SweepConfig:
    """What to sweep. Sizes per budget are centred on sqrt(C / (6 tokens_per_param)) (the
    optimum under a prior tokens-per-parameter ratio) and span ``decades`` of N."""

    budgets: list[float]
    out_dir: Path = Path("runs/sweep")
    sizes_per_budget: int = 5
    decades: float = 1.0
    tokens_per_param: float = 20.0
    base_preset: str = "llama3-tiny"
    model: dict[str, Any] = field(default_factory=dict)  # ModelArgs overrides for every run
    head_dim: int = 0  # 0: the base preset's; smaller values give a finer ladder of small models
    aspect_ratio: float = 32.0  # dim / n_layers the ladder prefers
    max_layers: int = 16
    max_heads: int = 32
    seq_len: int = 128
    global_batch_size: int = 8
    micro_batch_size: int = 8
    min_steps: int = 20
    lr: float = 3e-3
    warmup_fraction: float = 0.1
    eval_batches: int = 4
    seed: int = 0
    data_path: str = "builtin:stdlib"
    command: list[str] = field(default_factory=lambda: ["l3-core", "train"])
    trainer: dict[str, Any] = field(default_factory=dict)  # extra trainer TOML, merged in
    slurm_directives: list[str] = field(default_factory=list)  # e.g. "--partition=gpu"
    slurm_max_parallel: int = 0


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the sweep."""

    name: str
    budget: float
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


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> SweepConfig:
    """Read a sweep TOML (keys of :class:`SweepConfig`), with ``--set key=value`` overrides."""
    cfg = load_config(SweepConfig, path, overrides)
    if not cfg.budgets or any(not (b > 0) for b in cfg.budgets):
        raise SweepError(f"{path}: budgets must be a non-empty list of positive FLOP counts")
    if cfg.sizes_per_budget < 3:
        raise SweepError(f"{path}: sizes_per_budget={cfg.sizes_per_budget}; a parabola needs 3")
    return cfg


def shape_ladder(cfg: SweepConfig) -> list[ModelArgs]:
    """Every shape the planner may pick: the base preset's GQA ratio and head size (or
    ``cfg.head_dim``), with ``dim = head_dim * n_heads`` and 1..max_layers layers."""
    base = ModelArgs.from_preset(cfg.base_preset, **cfg.model)
    group = base.n_heads // base.kv_heads
    head_dim = cfg.head_dim or base.head_dim
    shapes = []
    for n_heads in range(group, cfg.max_heads + 1, group):
        for n_layers in range(1, cfg.max_layers + 1):
            shapes.append(
                base.replace(dim=head_dim * n_heads, n_heads=n_heads,
                             n_kv_heads=n_heads // group, n_layers=n_layers)
            )
    return shapes


def _pick(shapes: Sequence[ModelArgs], params: Sequence[int], target: float,
          aspect: float, taken: Sequence[int], min_gap: float) -> int | None:
    """The shape closest to ``target`` parameters (preferring the aspect ratio) whose size is
    at least ``min_gap`` decades from every size already taken, or None. Small ladders are
    coarse (the embedding dominates N), and near-equal sizes make a poor parabola."""

    def cost(i: int) -> float:
        s = shapes[i]
        return (math.log(params[i] / target)) ** 2 + 0.05 * math.log(
            s.dim / s.n_layers / aspect) ** 2

    free = [i for i in range(len(shapes))
            if all(abs(math.log10(params[i] / params[j])) >= min_gap for j in taken)]
    return min(free, key=cost) if free else None


def plan_sweep(cfg: SweepConfig) -> list[PlannedRun]:
    """Shapes and token counts for every budget; FLOPs come from ``ModelArgs.flops_per_token``.

    Token counts are whole optimizer steps, so a run's FLOPs differ from its budget by the
    rounding (recorded as ``flops``). Sizes that would train for fewer than ``min_steps``
    steps are dropped with a warning naming the budget.
    """
    shapes = shape_ladder(cfg)
    params = [scaling_params(s) for s in shapes]
    tokens_per_step = cfg.global_batch_size * cfg.seq_len
    out_dir = Path(cfg.out_dir)
    runs: list[PlannedRun] = []
    for budget in sorted(cfg.budgets):
        centre = math.sqrt(budget / (6.0 * cfg.tokens_per_param))
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
            name = f"C{budget:.2e}_d{s.dim}_l{s.n_layers}_h{s.n_heads}".replace("+", "")
            tokens = steps * tokens_per_step
            runs.append(
                PlannedRun(
                    name=name, budget=float(budget), flops=fpt * tokens, params=params[i],
                    tokens=tokens, steps=steps, dim=s.dim, n_layers=s.n_layers,
                    n_heads=s.n_heads, n_kv_heads=s.kv_heads, run_dir=out_dir / "runs" / name,
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


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def trainer_config(run: PlannedRun, cfg: SweepConfig) -> dict[str, Any]:
    """The l3-core training config of one run (the trainer's agreed TOML keys)."""
    own = {
        "run_dir": str(run.run_dir),
        "model": {"preset": cfg.base_preset, **cfg.model, "dim": run.dim,
                  "n_layers": run.n_layers, "n_heads": run.n_heads,
                  "n_kv_heads": run.n_kv_heads},
        "data": {"path": cfg.data_path, "seq_len": cfg.seq_len},
        "train": {"max_steps": run.steps, "seed": cfg.seed,
                  "global_batch_size": cfg.global_batch_size,
                  "micro_batch_size": cfg.micro_batch_size, "eval_every": run.steps,
                  "eval_batches": cfg.eval_batches},
        "optimizer": {"lr": cfg.lr},
        "schedule": {"warmup_steps": max(1, round(cfg.warmup_fraction * run.steps))},
    }
    return _merge(cfg.trainer, own)


def write_sweep(plan: Sequence[PlannedRun], cfg: SweepConfig) -> dict[str, Any]:
    """Write every run's config, ``configs.txt`` (one path a line) and ``sweep.sbatch``."""
    out_dir = Path(cfg.out_dir)
    for run in plan:
        with atomic_write(run.config_path, "wb") as f:
            tomli_w.dump(trainer_config(run, cfg), f)
    listing = out_dir / "configs.txt"
    with atomic_write(listing, encoding="utf-8") as f:
        f.write("".join(f"{r.config_path.resolve()}\n" for r in plan))
    slurm = out_dir / "sweep.sbatch"
    with atomic_write(slurm, encoding="utf-8") as f:
        f.write(slurm_script(plan, cfg, listing))
    return {"configs": [r.config_path for r in plan], "listing": listing, "slurm": slurm}


def slurm_script(plan: Sequence[PlannedRun], cfg: SweepConfig, listing: Path) -> str:
    """A Slurm array job: task i trains the i-th config of ``listing``; collect afterwards
    with ``l3-scaling sweep collect SWEEP.toml --fit``."""
    limit = f"%{cfg.slurm_max_parallel}" if cfg.slurm_max_parallel else ""
    logs = (Path(cfg.out_dir) / "slurm").resolve()
    lines = [
        "#!/bin/bash",
        "#SBATCH --job-name=l3-isoflop",
        f"#SBATCH --array=0-{len(plan) - 1}{limit}",
        f"#SBATCH --output={logs}/%A_%a.out",
        *(f"#SBATCH {d}" for d in cfg.slurm_directives),
        "set -euo pipefail",
        f'CONFIG=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {shlex.quote(str(listing.resolve()))})',
        f'exec {shlex.join(cfg.command)} --config "$CONFIG"',
        "",
    ]
    return "\n".join(lines)


def final_val_loss(metrics: Path, steps: int) -> float | None:
    """The run's final ``val_loss``, or None while the run is unfinished.

    Finished means the last record holds a ``val_loss`` at step >= ``steps`` - 1 (the trainer
    may count steps from 0 or 1). A malformed line other than a truncated last one (an
    interrupted write) is an error naming the file and line.
    """
    try:
        text = metrics.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    lines = text.splitlines()
    last: dict[str, Any] | None = None
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            last = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) and not text.endswith("\n"):
                return None
            raise SweepError(f"{metrics}:{i}: not a JSON object: {line[:80]!r}") from None
    if not last or "val_loss" not in last or last.get("step", -1) < steps - 1:
        return None
    value = last["val_loss"]
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SweepError(f"{metrics}:{len(lines)}: final val_loss={value!r} is not a positive number")
    return float(value)


RUNS_COLUMNS = ("name", "C", "C_actual", "N", "D", "loss", "steps", "dim", "n_layers")


def collect(plan: Sequence[PlannedRun], cfg: SweepConfig, *, allow_missing: bool = True,
            warn_missing: bool = True) -> Path:
    """Write ``runs.csv`` (columns C, N, D, loss, ...) from every finished run; C is the
    planned budget so that runs of one budget group exactly."""
    rows = []
    missing = []
    for run in plan:
        loss = final_val_loss(run.run_dir / "metrics.jsonl", run.steps)
        if loss is None:
            missing.append(run.name)
            continue
        rows.append([run.name, run.budget, run.flops, run.params, run.tokens, loss, run.steps,
                     run.dim, run.n_layers])
    if missing and not allow_missing:
        raise SweepError(f"{len(missing)} run(s) unfinished: {', '.join(missing)}")
    if missing and warn_missing:
        log.warning("%d of %d runs unfinished: %s", len(missing), len(plan), ", ".join(missing))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RUNS_COLUMNS)
    writer.writerows(rows)
    path = Path(cfg.out_dir) / "runs.csv"
    with atomic_write(path, encoding="utf-8") as f:
        f.write(buf.getvalue())
    return path


def run_sweep(plan: Sequence[PlannedRun], cfg: SweepConfig, *, progress: bool = False) -> Path:
    """Train every unfinished run in turn (``cfg.command --config <toml>``), then collect.

    A failing run is reported with its log's last lines; the others still run, and a
    :class:`SweepError` naming the failures is raised at the end (``runs.csv`` holds the rest).
    """
    from tqdm import tqdm

    failures = []
    bar = tqdm(plan, desc="sweep", unit="run", disable=not progress)
    for run in bar:
        bar.set_postfix_str(run.name)
        if final_val_loss(run.run_dir / "metrics.jsonl", run.steps) is not None:
            log.info("%s: already finished, skipped", run.name)
            continue
        run.run_dir.mkdir(parents=True, exist_ok=True)
        cmd = [*cfg.command, "--config", str(run.config_path)]
        log.info("%s: %s", run.name, shlex.join(cmd))
        log_path = run.run_dir / "train.log"
        with log_path.open("w", encoding="utf-8") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0 or final_val_loss(run.run_dir / "metrics.jsonl",
                                                   run.steps) is None:
            tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            failures.append(f"{run.name} (exit {proc.returncode}, log {log_path}): "
                            + " | ".join(tail))
        collect(plan, cfg, warn_missing=False)  # so that runs.csv is current after every run
    table = collect(plan, cfg)
    if failures:
        raise SweepError(f"{len(failures)} run(s) failed: " + "; ".join(failures))
    return table
