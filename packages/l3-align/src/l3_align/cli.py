"""l3-align: post-training for the l3 herd (Llama 3 paper section 4).

l3-align sft --model DIR --data rows.jsonl --run-dir OUT [--eval FILE] [--set train.max_steps=N]
l3-align dpo --model DIR --data pairs.jsonl --run-dir OUT [--set dpo.beta=0.1]
l3-align rm --model DIR --data pairs.jsonl --run-dir OUT [--eval FILE]

sft, dpo and rm train on l3-core's parallel trainer: --nproc N starts N local gloo ranks (or run
the command under torchrun), with the layout in parallel.* (e.g. --set parallel.tp=2).
l3-align score --reward-model OUT/final --data pairs.jsonl
l3-align sample --model DIR --reward-model RM --prompts FILE.jsonl --k K --out FILE.jsonl
l3-align average OUT1/final OUT2/final ... --out DIR
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from l3_align.commands_rm import COMMANDS as RM_COMMANDS
from l3_align.config import AlignConfig
from l3_align.errors import AlignConfigError
from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.config import load_config


def _configure_run(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--model", required=True, type=Path, help="HF or l3 checkpoint directory")
    p.add_argument("--data", required=True, type=Path, help="rows (JSONL, gzip/zstd, Parquet)")
    p.add_argument("--run-dir", required=True, type=Path, help="output directory")
    p.add_argument("--eval", type=Path, help="held-out rows evaluated at the end")
    p.add_argument("--tokenizer", type=Path, help="tokenizer file (default: DIR/tokenizer.model)")
    p.add_argument(
        "--nproc", type=int, default=1, help="local gloo ranks to train on (parallel.* splits them)"
    )


def _runner(run: Callable[..., dict[str, Any]]) -> Callable[[argparse.Namespace], int]:
    def go(opts: argparse.Namespace) -> int:
        cfg = load_config(AlignConfig, opts.config, opts.overrides)
        if opts.nproc < 1:
            raise AlignConfigError(f"--nproc = {opts.nproc} must be at least 1")
        summary = run(
            cfg, opts.model, opts.data, opts.run_dir, opts.eval, opts.tokenizer, opts.nproc
        )
        if not summary:  # a rank other than 0 under torchrun
            return 0
        last = summary["last"]
        shown = ", ".join(
            f"{k} {v:.4g}"
            for k, v in last.items()
            if k
            in (
                "loss",
                "reward_margin",
                "accuracy",
                "val_loss",
                "val_reward_accuracy",
                "val_accuracy",
            )
        )
        print(
            f"{opts.run_dir}: {last.get('step', 0)} steps, {shown}; "
            f"{summary['excluded']} rows excluded; model in {summary['final']}"
        )
        return 0

    return go


def _sft(opts: argparse.Namespace) -> int:
    from l3_align.sft.run import run_sft

    return _runner(run_sft)(opts)


def _dpo(opts: argparse.Namespace) -> int:
    from l3_align.dpo.run import run_dpo

    return _runner(run_dpo)(opts)


COMMANDS = [
    Command(
        "sft", "supervised fine-tuning on chat rows (loss on assistant turns)", _configure_run, _sft
    ),
    Command("dpo", "direct preference optimisation on preference rows", _configure_run, _dpo),
    *RM_COMMANDS,
]


def main(argv: list[str] | None = None) -> int:
    return run_cli("l3-align", COMMANDS, argv, description=__doc__, distribution="l3-align")


if __name__ == "__main__":
    raise SystemExit(main())
