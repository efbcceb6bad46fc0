"""What a sweep sweeps: :class:`SweepConfig`, read from TOML with ``--set`` overrides."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l3_core.config import load_config
from l3_scaling import checks


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

    def validate(self, where: str = "") -> SweepConfig:
        """Check every value against its range; the first bad one is a
        :class:`~l3_scaling.errors.ParameterError` naming the key and value."""
        positive_budgets = bool(self.budgets) and all(
            isinstance(b, (int, float)) and math.isfinite(b) and b > 0 for b in self.budgets
        )
        checks.check(
            {
                "budgets": (
                    self.budgets,
                    positive_budgets,
                    "a non-empty list of positive FLOP counts",
                ),
                "sizes_per_budget": (
                    self.sizes_per_budget,
                    self.sizes_per_budget >= 3,
                    ">= 3 (a parabola needs 3 sizes)",
                ),
                "decades": (self.decades, self.decades > 0, "> 0"),
                "tokens_per_param": (self.tokens_per_param, self.tokens_per_param > 0, "> 0"),
                "head_dim": (self.head_dim, self.head_dim >= 0, ">= 0 (0: the preset's)"),
                "aspect_ratio": (self.aspect_ratio, self.aspect_ratio > 0, "> 0"),
                "max_layers": (self.max_layers, self.max_layers >= 1, ">= 1"),
                "max_heads": (self.max_heads, self.max_heads >= 1, ">= 1"),
                "seq_len": (self.seq_len, self.seq_len >= 1, ">= 1"),
                "global_batch_size": (self.global_batch_size, self.global_batch_size >= 1, ">= 1"),
                "micro_batch_size": (
                    self.micro_batch_size,
                    self.micro_batch_size >= 1
                    and self.global_batch_size % self.micro_batch_size == 0,
                    f"a divisor of global_batch_size = {self.global_batch_size}",
                ),
                "min_steps": (self.min_steps, self.min_steps >= 1, ">= 1"),
                "lr": (self.lr, self.lr > 0, "> 0"),
                "warmup_fraction": (
                    self.warmup_fraction,
                    0 <= self.warmup_fraction < 1,
                    "in [0, 1)",
                ),
                "eval_batches": (self.eval_batches, self.eval_batches >= 1, ">= 1"),
                "command": (self.command, bool(self.command), "a non-empty argument list"),
                "slurm_max_parallel": (
                    self.slurm_max_parallel,
                    self.slurm_max_parallel >= 0,
                    ">= 0 (0: no limit)",
                ),
            },
            where,
        )
        return self


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> SweepConfig:
    """Read a sweep TOML (keys of :class:`SweepConfig`), with ``--set key=value`` overrides."""
    return load_config(SweepConfig, path, overrides).validate(str(path))
