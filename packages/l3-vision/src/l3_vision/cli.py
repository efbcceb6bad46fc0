"""l3-vision: caption images, train adapters on image-text pairs, convert checkpoints."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.config import load_config


def _configure_caption(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--checkpoint", required=True, type=Path, help="an l3-vision checkpoint directory"
    )
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--max-new-tokens", type=int, default=16)


def _caption(opts: argparse.Namespace) -> int:
    from l3_vision.caption import caption_files

    for path, text in zip(
        opts.images, caption_files(opts.checkpoint, opts.images, opts.max_new_tokens)
    ):
        print(f"{path}\t{text}")
    return 0


def _configure_train(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--run-dir", required=True, type=Path)


def _train(opts: argparse.Namespace) -> int:
    from l3_vision.config import RunConfig
    from l3_vision.training.loop import train

    figures = train(load_config(RunConfig, opts.config, opts.overrides), opts.run_dir)
    print(json.dumps(figures, indent=2))
    return 0


def _configure_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", type=Path, help="an HF Mllama or l3-vision checkpoint directory")
    p.add_argument("target", type=Path)
    p.add_argument("--to", choices=("hf", "l3"), required=True, help="the target format")


def _convert(opts: argparse.Namespace) -> int:
    from l3_vision.checkpoint import load_checkpoint, save_checkpoint

    save_checkpoint(load_checkpoint(opts.source), opts.target, format=opts.to)
    print(f"wrote {opts.target} ({opts.to})")
    return 0


COMMANDS = [
    Command("caption", "print one caption per image", _configure_caption, _caption),
    Command("train", "train the adapters on image-text pairs", _configure_train, _train),
    Command(
        "convert",
        "convert between HF Mllama and l3-vision checkpoints",
        _configure_convert,
        _convert,
    ),
]


def main(argv: list[str] | None = None) -> int:
    return run_cli("l3-vision", COMMANDS, argv, description=__doc__, distribution="l3-vision")


if __name__ == "__main__":
    raise SystemExit(main())
