"""What every alignment run does before and after training: load the model and its tokenizer
(checked against each other), size the rows, write the exclusions, the config and a summary."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from l3_align.config import AlignConfig
from l3_align.data.encode import ChatEncoder, check_tokenizer_fits
from l3_align.errors import AlignInputError, AlignModelError
from l3_core.args import ModelArgs
from l3_core.checkpoint import load_checkpoint
from l3_core.config import to_dict
from l3_core.io import write_json
from l3_core.jsonl import Exclusions
from l3_core.model import Transformer
from l3_core.tokenizer import Tokenizer

EXCLUSIONS = "excluded.jsonl"


@dataclass
class RunInputs:
    """What a run reads before training. Not the model's weights: the trainer loads its own
    copy from ``model_dir``, and a plain copy kept here would stay in memory all along."""

    args: ModelArgs
    model_dir: Path
    tokenizer: Tokenizer
    tokenizer_file: Path
    encoder: ChatEncoder
    seq_len: int


def tokenizer_file_for(model_dir: Path, tokenizer_file: Path | None) -> Path:
    path = Path(tokenizer_file) if tokenizer_file else Path(model_dir) / "tokenizer.model"
    if not path.is_file():
        raise AlignModelError(
            f"{path}: tokenizer not found (the model directory holds none; pass --tokenizer FILE)"
        )
    return path


def load_model(model_dir: Path) -> Transformer:
    return load_checkpoint(model_dir, dtype=torch.float32)


def prepare(cfg: AlignConfig, model_dir: Path, tokenizer_file: Path | None = None) -> RunInputs:
    cfg.validate()
    tok_path = tokenizer_file_for(model_dir, tokenizer_file)
    tokenizer = Tokenizer.from_file(tok_path)
    _check_same_as_shipped(Path(model_dir), tokenizer)
    args = load_model(model_dir).args  # loading checks the weights at start-up
    check_tokenizer_fits(tokenizer, args, str(model_dir))
    seq_len = cfg.data.seq_len or args.max_seq_len
    if seq_len > args.max_seq_len:
        raise AlignModelError(
            f"data.seq_len = {seq_len} exceeds the model's max_seq_len {args.max_seq_len}"
        )
    encoder = ChatEncoder(tokenizer, seq_len, cfg.data.truncation)
    return RunInputs(args, Path(model_dir), tokenizer, tok_path, encoder, seq_len)


def _check_same_as_shipped(model_dir: Path, tokenizer: Tokenizer) -> None:
    """A ``--tokenizer`` other than the one the checkpoint ships is another model's."""
    shipped = model_dir / "tokenizer.model"
    if (
        shipped.is_file()
        and tokenizer.path is not None
        and tokenizer.path.resolve() != shipped.resolve()
    ):
        theirs = Tokenizer.from_file(shipped).fingerprint()
        if theirs != tokenizer.fingerprint():
            raise AlignModelError(
                f"{tokenizer.path}: tokenizer {tokenizer.fingerprint()} differs from the model's "
                f"own {shipped} ({theirs}): it is not this model's tokenizer"
            )


def require_rows(n: int, data: Path, exclusions: Exclusions, run_dir: Path) -> None:
    if n == 0:
        exclusions.write(run_dir / EXCLUSIONS)
        raise AlignInputError(
            f"{data}: no usable rows ({len(exclusions)} excluded; reasons in "
            f"{run_dir / EXCLUSIONS})"
        )


def finish_run(
    run_dir: Path,
    cfg: AlignConfig,
    exclusions: Exclusions,
    counts: dict[str, int],
    last: dict[str, Any],
) -> dict[str, Any]:
    exclusions.write(run_dir / EXCLUSIONS)
    write_json(run_dir / "config.json", to_dict(cfg))
    summary = {
        **counts,
        "excluded": len(exclusions),
        "excluded_by_reason": exclusions.by_reason(),
        "final": str(run_dir / "final"),
        "last": last,
    }
    write_json(run_dir / "summary.json", summary)
    return summary
