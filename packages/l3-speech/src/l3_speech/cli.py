"""``l3-speech``: train an ASR model, pre-train an encoder with BEST-RQ, transcribe WAV files,
make a small spoken-digits corpus with espeak-ng, and normalise written text to spoken words."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from l3_core.cli_runner import Command, add_config_arguments, run_cli
from l3_core.config import load_config


def _configure_train(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True)


def _train(opts: argparse.Namespace) -> int:
    from l3_speech.asr.train import TrainConfig, train_asr

    cfg = load_config(TrainConfig, opts.config, opts.overrides)
    print(json.dumps(train_asr(cfg), indent=2))
    return 0


def _configure_pretrain(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p, required=True)


def _pretrain(opts: argparse.Namespace) -> int:
    from l3_speech.bestrq.pretrain import PretrainConfig, pretrain

    cfg = load_config(PretrainConfig, opts.config, opts.overrides)
    print(json.dumps(pretrain(cfg), indent=2))
    return 0


def _configure_transcribe(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, type=Path, help="a speech checkpoint directory")
    p.add_argument(
        "files", nargs="+", type=Path, help="audio files (WAV, FLAC, ...) at any common rate"
    )
    p.add_argument("--batch-size", type=int, default=8)


def _transcribe(opts: argparse.Namespace) -> int:
    from l3_speech.asr.transcribe import transcribe_files

    for line in transcribe_files(opts.checkpoint, opts.files, opts.batch_size):
        print(line, flush=True)
    return 0


def _configure_synth(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--n-train", type=int, default=600)
    p.add_argument("--n-test", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)


def _synth(opts: argparse.Namespace) -> int:
    from l3_speech.synth import SynthSpec, synthesize

    manifests = synthesize(
        opts.out, SynthSpec(n_train=opts.n_train, n_test=opts.n_test, seed=opts.seed)
    )
    for name, path in manifests.items():
        print(f"{name}\t{path}")
    return 0


def _configure_normalize(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", nargs="+", help="written text; '-' reads stdin line by line")


def _normalize(opts: argparse.Namespace) -> int:
    import sys

    from l3_speech.text.normalize import normalize

    lines = sys.stdin if opts.text == ["-"] else [" ".join(opts.text)]
    for line in lines:
        print(normalize(line), flush=True)
    return 0


COMMANDS = [
    Command("train", "train encoder + adapter into a frozen LM (ASR)", _configure_train, _train),
    Command("pretrain", "BEST-RQ pre-training of the encoder", _configure_pretrain, _pretrain),
    Command(
        "transcribe",
        "print one transcript per audio file, in input order",
        _configure_transcribe,
        _transcribe,
    ),
    Command("synth", "synthesise a spoken-digits corpus with espeak-ng", _configure_synth, _synth),
    Command(
        "normalize",
        "written text to spoken words (numbers, dates, units, currencies)",
        _configure_normalize,
        _normalize,
    ),
]


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli("l3-speech", COMMANDS, argv, description=__doc__)


if __name__ == "__main__":
    raise SystemExit(main())
