"""What ``sweep plan`` writes into ``out_dir``: each run's l3-core config (built as the
trainer's ``RunConfig``), ``configs.txt`` (one path a line) and ``sweep.sbatch``."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l3_core.io import atomic_write
from l3_scaling.corpus import data_table
from l3_scaling.sweep.config import SweepConfig
from l3_scaling.sweep.plan import PlannedRun
from l3_scaling.trainer_contract import RunConfig, build_run_config, write_run_config


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def trainer_config(run: PlannedRun, cfg: SweepConfig) -> RunConfig:
    """The l3-core run config of one run: the sweep's ``trainer`` table with the run's own
    shape, data, steps and schedule on top."""
    own = {
        "run_dir": str(run.run_dir),
        "model": {
            "preset": cfg.base_preset,
            **cfg.model_overrides(),
            "dim": run.dim,
            "n_layers": run.n_layers,
            "n_heads": run.n_heads,
            "n_kv_heads": run.n_kv_heads,
        },
        "data": {**data_table(cfg.data_path), "seq_len": cfg.seq_len},
        "train": {
            "max_steps": run.steps,
            "seed": run.seed,
            "global_batch_size": cfg.global_batch_size,
            "micro_batch_size": cfg.micro_batch_size,
            "eval_every": run.steps,
            "eval_batches": cfg.eval_batches,
        },
        "optimizer": {"lr": cfg.lr},
        "schedule": {"warmup_steps": max(1, round(cfg.warmup_fraction * run.steps))},
    }
    return build_run_config(_merge(cfg.trainer, own), where=f"sweep run {run.name}")


def write_sweep(
    plan: Sequence[PlannedRun], cfg: SweepConfig, name: str = "sweep"
) -> dict[str, Any]:
    """Write every run's config, the listing (``configs.txt``, or ``NAME-configs.txt``) and
    ``NAME.sbatch``; return their paths. A staged sweep names each stage's script."""
    out_dir = Path(cfg.out_dir)
    plan = list({r.name: r for r in plan}.values())  # a run two passes planned is one task
    for run in plan:
        write_run_config(trainer_config(run, cfg), run.config_path)
    listing = out_dir / ("configs.txt" if name == "sweep" else f"{name}-configs.txt")
    with atomic_write(listing, encoding="utf-8") as f:
        f.write("".join(f"{r.config_path.resolve()}\n" for r in plan))
    slurm = out_dir / f"{name}.sbatch"
    with atomic_write(slurm, encoding="utf-8") as f:
        f.write(slurm_script(plan, cfg, listing))
    return {"configs": [r.config_path for r in plan], "listing": listing, "slurm": slurm}


def slurm_script(plan: Sequence[PlannedRun], cfg: SweepConfig, listing: Path) -> str:
    """A Slurm array job: task i trains the i-th config of ``listing``; collect afterwards
    with ``l3-scaling sweep collect --config SWEEP.toml --fit``."""
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
