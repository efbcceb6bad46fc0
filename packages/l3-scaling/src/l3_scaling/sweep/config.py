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
    # A shard directory, "builtin:stdlib" (l3-core's, 8,192 ids) or "builtin:stdlib-small"
    # (l3-scaling's, 768 ids: l3_scaling.corpus), whose vocabulary is then the model's.
    data_path: str = "builtin:stdlib"
    seeds: list[int] = field(default_factory=lambda: [0])  # every run once per seed
    parallel: int = 1  # runs trained at once on this machine
    threads_per_run: int = 1  # OMP/MKL threads of each run (parallel * threads <= cores)
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
                "seeds": (
                    self.seeds,
                    bool(self.seeds)
                    and len(set(self.seeds)) == len(self.seeds)
                    and all(isinstance(x, int) and x >= 0 for x in self.seeds),
                    "a non-empty list of distinct integers >= 0",
                ),
                "parallel": (self.parallel, self.parallel >= 1, ">= 1"),
                "threads_per_run": (self.threads_per_run, self.threads_per_run >= 1, ">= 1"),
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

    def model_overrides(self) -> dict[str, Any]:
        """``model`` with the built-in corpus's vocabulary when ``data_path`` names one."""
        from l3_scaling.corpus import builtin_vocab_size

        vocab = builtin_vocab_size(self.data_path)
        return {"vocab_size": vocab, **self.model} if vocab else dict(self.model)


def load_sweep(path: str | Path, overrides: Iterable[str] = ()) -> SweepConfig:
    """Read a sweep TOML (keys of :class:`SweepConfig`), with ``--set key=value`` overrides."""
    return load_config(SweepConfig, path, overrides).validate(str(path))
