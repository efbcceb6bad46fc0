"""The ``train`` command (only this module of the trainer prints).

Importing this module costs no torch: the run config is read first, so a bad config is a
config error even where the train extra is missing, and the trainer is imported only when the
command runs (:data:`COMMAND` is how ``l3-core`` lists it). ``python -m l3_core.train``, what
``torchrun -m`` launches, runs the same command through :func:`main`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.errors import DependencyError
from l3_core.run_config import load_run_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, required=True)


def run(ns: argparse.Namespace) -> int:
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    _log_per_rank(rank)
    cfg = load_run_config(ns.config, ns.overrides)
    train = _trainer()
    try:
        records = train(cfg)
    finally:
        _end_process_group()
    if rank == 0 and records:
        last = records[-1]
        print(
            f"done: step {last['step']} loss {last['loss']:.4f} "
            f"val_loss {last.get('val_loss', float('nan')):.4f} -> {cfg.run_dir}/metrics.jsonl"
        )
    return 0


def _trainer():
    """:func:`l3_core.train.train`, once its dependencies (the train extra) are importable."""
    warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex.*")
    try:
        import l3_core.train.loop  # noqa: F401  (torch, Megatron-core)
    except ImportError as e:
        raise DependencyError(
            f"training needs the train extra: pip install 'l3-core[train]' ({e})"
        ) from None
    from l3_core.train import train

    return train


def _log_per_rank(rank: int) -> None:
    # Every rank logs with its rank; only rank 0 below warnings, at the level -v/-q chose.
    level = logging.getLogger().level if rank == 0 else logging.WARNING
    logging.basicConfig(
        level=level,
        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("megatron", "torch.distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _end_process_group() -> None:
    if "torch.distributed" not in sys.modules:  # nothing was started
        return
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


COMMAND = Command(
    name="train",
    help="train a model on Megatron-core (l3-core[train])",
    configure=add_arguments,
    run=run,
)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m l3_core.train --config run.toml [--set key=value ...]``."""
    args = sys.argv[1:] if argv is None else list(argv)
    return run_cli("l3-core", [COMMAND], ["train", *args], distribution="l3-core")
