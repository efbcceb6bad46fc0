"""The reward-model jobs behind ``l3-align rm`` and ``l3-align score``: files in, files out."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from l3_align.data.encode import ChatEncoder, check_tokenizer_fits
from l3_align.errors import AlignInputError
from l3_align.rm.checkpoint import load_reward_model, save_reward_model, tokenizer_path
from l3_align.rm.config import RewardRunConfig
from l3_align.rm.losses import RANKED
from l3_align.rm.model import RewardModel
from l3_align.rm.preferences import encode_reward_file
from l3_align.rm.train import batch_scores, train_reward_model
from l3_core.checkpoint import load_checkpoint
from l3_core.io import write_json
from l3_core.jsonl import Exclusions
from l3_core.tokenizer import Tokenizer

log = logging.getLogger(__name__)

EXCLUSIONS_FILE = "exclusions.jsonl"


def run_reward_training(
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    cfg: RewardRunConfig,
    eval_data: str | os.PathLike[str] | None = None,
    tokenizer_file: str | os.PathLike[str] | None = None,
) -> dict:
    """Train a reward model from the causal LM at ``model_dir`` on ``data``; write
    ``run_dir/metrics.jsonl``, ``run_dir/final/`` (with the tokenizer), the excluded rows and
    ``run_dir/summary.json``; return the summary."""
    cfg.validate()
    run_dir = Path(run_dir)
    tok_file = Path(tokenizer_file) if tokenizer_file else tokenizer_path(model_dir)
    tok = Tokenizer.from_file(tok_file)
    trunk = load_checkpoint(model_dir, dtype=torch.float32)
    check_tokenizer_fits(tok, trunk.args, str(model_dir))
    encoder = ChatEncoder(tok, trunk.args.max_seq_len)
    exclusions = Exclusions()
    rows = encode_reward_file(data, encoder, exclusions)
    held = encode_reward_file(eval_data, encoder, exclusions) if eval_data else None
    run_dir.mkdir(parents=True, exist_ok=True)
    exclusions.write(run_dir / EXCLUSIONS_FILE)
    if len(rows) == 0:
        raise AlignInputError(f"{data}: no usable preference rows ({len(exclusions)} excluded)")
    torch.manual_seed(cfg.train.seed)
    rm = RewardModel(trunk)
    rm.init_score(torch.Generator().manual_seed(cfg.train.seed))
    records = train_reward_model(rm, rows, cfg, run_dir, tok.pad_id, held)
    save_reward_model(rm, run_dir / "final", tok_file, tok.pad_id)
    last = records[-1]
    summary = {
        "rows": len(rows),
        "eval_rows": len(held) if held is not None else 0,
        "excluded": len(exclusions),
        "excluded_by_reason": exclusions.by_reason(),
        "steps": last["step"],
        "final_loss": last["loss"],
        "eval_accuracy": last.get("eval_accuracy"),
    }
    write_json(run_dir / "summary.json", summary)
    return summary


def score_file(
    reward_model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    exclusions: Exclusions,
    batch_size: int = 16,
) -> Iterator[dict]:
    """``{line, chosen_score, rejected_score[, edited_score]}`` per usable row of ``data``."""
    rm = load_reward_model(reward_model_dir)
    tok = Tokenizer.from_file(tokenizer_path(reward_model_dir))
    check_tokenizer_fits(tok, rm.trunk.args, str(reward_model_dir))
    encoder = ChatEncoder(tok, rm.trunk.args.max_seq_len)
    rows = encode_reward_file(data, encoder, exclusions)
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            index = range(start, min(start + batch_size, len(rows)))
            batch = rows.take(index)
            scores = batch_scores(rm, batch, tok.pad_id)
            for i, row_scores, present in zip(index, scores.tolist(), batch.present.tolist()):
                out = {"line": rows.lines[i]}
                out.update({f"{k}_score": s for k, s, p in zip(RANKED, row_scores, present) if p})
                yield out
