"""The ``l3-core`` command: one subcommand per job."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="l3-core", description="Llama 3 core tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    from l3_core.train import cli as train_cli

    train_cli.add_arguments(sub.add_parser("train", help="train a model on Megatron-core"))
    ns = parser.parse_args(argv)
    if ns.command == "train":
        return train_cli.run(ns)
    parser.error(f"unknown command {ns.command}")
    return 2
