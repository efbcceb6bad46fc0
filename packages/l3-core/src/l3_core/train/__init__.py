"""Training Llama 3 models on Megatron-core (``pip install 'l3-core[train]'``).

``l3-core train --config run.toml [--set key=value ...]`` runs :func:`main`; the same code runs
as one process, under ``torchrun`` or under Slurm. See ``docs/training.md``.
"""

from __future__ import annotations

from l3_core.run_config import RunConfig, load_run_config

__all__ = ["RunConfig", "load_run_config", "main", "train"]


def train(cfg: RunConfig) -> list[dict]:
    """Run a training job in this process (one rank of it); return its metric records."""
    from l3_core.train.loop import Trainer

    with Trainer(cfg) as trainer:
        return trainer.run()


def main(argv: list[str] | None = None) -> int:
    from l3_core.train.cli import main as cli_main

    return cli_main(argv)
