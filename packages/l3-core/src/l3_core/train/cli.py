"""The ``train`` command: argument parsing and error reporting (only this module prints)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from l3_core.errors import L3Error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="run TOML (see examples/tiny-cpu.toml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override a config value, e.g. parallel.tp=2")


def run(ns: argparse.Namespace) -> int:
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format=f"[rank {rank}] %(levelname)s %(name)s: %(message)s")
    for noisy in ("megatron", "torch.distributed"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import warnings

        warnings.filterwarnings("ignore", message=".*Transformer Engine and Apex.*")
        from l3_core.train import load_run_config, train

        cfg = load_run_config(ns.config, ns.overrides)
        records = train(cfg)
    except L3Error as e:
        print(f"l3-core train: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(f"l3-core train: {e}; install the train extra: pip install 'l3-core[train]'",
              file=sys.stderr)
        return 2
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0 and records:
        last = records[-1]
        print(f"done: step {last['step']} loss {last['loss']:.4f} "
              f"val_loss {last.get('val_loss', float('nan')):.4f} -> {cfg.run_dir}/metrics.jsonl")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="l3-core train",
                                     description="Train a Llama 3 model on Megatron-core.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
