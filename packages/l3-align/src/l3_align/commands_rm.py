"""``l3-align`` commands of the reward model, rejection sampling, averaging and data quality.

``COMMANDS`` is a list of :class:`~l3_core.cli_runner.Command` for ``cli.py`` to add to its own.
Commands parse, call the library and print; the work happens in the library modules.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from l3_core.cli_runner import Command, add_config_arguments
from l3_core.config import load_config
from l3_core.jsonl import Exclusions, write_jsonl


def _configure_rm(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--model", required=True, help="HF or l3 checkpoint directory (the trunk)")
    p.add_argument("--data", required=True, help="preference rows (JSONL or Parquet)")
    p.add_argument("--run-dir", required=True, help="where metrics.jsonl and final/ go")
    p.add_argument("--eval", help="held-out preference rows for accuracy")
    p.add_argument("--tokenizer", help="tokenizer file (default: MODEL/tokenizer.model)")
    p.add_argument(
        "--nproc", type=int, default=1, help="local gloo ranks to train on (parallel.* splits them)"
    )


def _rm(opts: argparse.Namespace) -> int:
    from l3_align.config import AlignConfig
    from l3_align.errors import AlignConfigError
    from l3_align.rm.run import run_reward_training

    cfg = load_config(AlignConfig, opts.config, opts.overrides)
    if opts.nproc < 1:
        raise AlignConfigError(f"--nproc = {opts.nproc} must be at least 1")
    summary = run_reward_training(
        cfg, opts.model, opts.data, opts.run_dir, opts.eval, opts.tokenizer, opts.nproc
    )
    if summary:  # empty on ranks other than 0 under torchrun
        print(json.dumps(summary))
    return 0


def _configure_score(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reward-model", required=True, help="a reward-model directory (rm's final/)")
    p.add_argument("--data", required=True, help="preference rows (JSONL or Parquet)")
    p.add_argument("--out", help="output JSONL (default: standard output)")
    p.add_argument("--exclusions", help="where excluded rows go (default: beside --out, or none)")
    p.add_argument("--batch-size", type=int, default=16)


def _score(opts: argparse.Namespace) -> int:
    from l3_align.errors import AlignConfigError
    from l3_align.rm.run import score_file

    if opts.batch_size < 1:  # 0 would fail deep inside; a negative size would score nothing
        raise AlignConfigError(f"--batch-size = {opts.batch_size}: must be >= 1")
    exclusions = Exclusions()
    rows = score_file(opts.reward_model, opts.data, exclusions, opts.batch_size)
    if opts.out:
        write_jsonl(opts.out, rows)
    else:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
    target = opts.exclusions or (
        Path(opts.out).with_suffix(".exclusions.jsonl") if opts.out else None
    )
    if target is not None:
        exclusions.write(target)
    for bad in exclusions.rows:
        print(f"excluded {bad}", file=sys.stderr)
    return 0


def _configure_sample(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--model", required=True, help="the policy: HF or l3 checkpoint directory")
    p.add_argument("--reward-model", required=True, help="a reward-model directory (rm's final/)")
    p.add_argument("--prompts", required=True, help="prompt rows {messages} (JSONL or Parquet)")
    p.add_argument("--k", type=int, help="samples per prompt (sample.k; default 10, at most 30)")
    p.add_argument("--out", required=True, help="the kept SFT rows (JSONL)")


def _sample(opts: argparse.Namespace) -> int:
    from l3_align.sampling.config import SampleRunConfig
    from l3_align.sampling.run import run_rejection_sampling

    overrides = [*opts.overrides, *([f"sample.k={opts.k}"] if opts.k is not None else [])]
    cfg = load_config(SampleRunConfig, opts.config, overrides)
    summary = run_rejection_sampling(opts.model, opts.reward_model, opts.prompts, opts.out, cfg)
    print(json.dumps(summary))
    return 0


def _configure_average(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoints", nargs="+", help="checkpoint directories of one architecture")
    p.add_argument("--out", required=True, help="where the averaged checkpoint goes")
    p.add_argument("--weights", type=float, nargs="+", help="one weight per checkpoint")


def _average(opts: argparse.Namespace) -> int:
    from l3_align.average import average_checkpoints

    print(average_checkpoints(opts.checkpoints, opts.out, opts.weights))
    return 0


COMMANDS = [
    Command("rm", "train a reward model on preference rows", _configure_rm, _rm),
    Command("score", "score preference rows with a reward model", _configure_score, _score),
    Command("sample", "rejection sampling: keep the best of K samples", _configure_sample, _sample),
    Command("average", "average the weights of checkpoints", _configure_average, _average),
]
