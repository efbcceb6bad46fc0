"""The reward-model jobs behind ``l3-align rm`` and ``l3-align score``: files in, files out.

``rm`` is a task for :func:`l3_align.train.job.run_job` (the parallel trainer); its ``final/``
is the ``LlamaForSequenceClassification`` directory :func:`load_reward_model` and transformers
read. ``score`` runs the plain reward model, prompt-once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from l3_align.config import AlignConfig
from l3_align.data.encode import ChatEncoder, check_tokenizer_fits
from l3_align.data.packing import place_groups
from l3_align.rm.checkpoint import load_reward_model, save_reward_model, tokenizer_path
from l3_align.rm.losses import RANKED
from l3_align.rm.model import RewardModel
from l3_align.rm.objective import RewardObjective, reward_items
from l3_align.rm.preferences import EncodedRows, batch_scores, encode_reward_file
from l3_align.train.job import AlignJob, Task, register_task, run_task
from l3_align.train.packed import PackedSource, packed_source
from l3_align.train.plain import HeadOutputs
from l3_align.train.setup import RunInputs, require_rows
from l3_core.checkpoint import load_checkpoint_with_head
from l3_core.jsonl import Exclusions
from l3_core.tokenizer import Tokenizer

log = logging.getLogger(__name__)


def run_reward_training(
    cfg: AlignConfig,
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    eval_data: str | os.PathLike[str] | None = None,
    tokenizer_file: str | os.PathLike[str] | None = None,
    nproc: int = 1,
) -> dict[str, Any]:
    """Train a reward model from the causal LM at ``model_dir`` on ``data``; the summary."""
    return run_task("rm", cfg, model_dir, data, run_dir, eval_data, tokenizer_file, nproc)


def _items(rows: EncodedRows, seq_len: int, exclusions: Exclusions, source: str) -> list:
    """Each row's packing group (prompt once, then its responses); a row whose group does not
    fit one packed row is excluded."""
    out = []
    for i in range(len(rows)):
        items = reward_items(rows.groups[i], rows.present[i])
        total = sum(len(item.tokens) for item in items)
        if total > seq_len:
            line = rows.lines[i] if rows.lines else i + 1
            exclusions.reject(
                source, line, f"its prompt and responses packed together are {total} "
                f"tokens, more than the sequence length {seq_len}"
            )  # fmt: skip
            continue
        out.append(items)
    return out


@register_task("rm")
def reward_task(cfg: AlignConfig, inputs: RunInputs, job: AlignJob) -> Task:
    exclusions = Exclusions()
    files = {"train": job.data, **({"eval": job.eval_data} if job.eval_data else {})}
    groups = {
        k: _items(encode_reward_file(p, inputs.encoder, exclusions), inputs.seq_len, exclusions, p)
        for k, p in files.items()
    }
    for k, p in files.items():
        require_rows(len(groups[k]), Path(p), exclusions, Path(job.run_dir))
    held = "eval" if "eval" in files else "train"
    pad = inputs.tokenizer.pad_id

    def data(run_cfg) -> PackedSource:
        return packed_source(groups, inputs.seq_len, pad, cfg.train.seed, cfg.train.batch_rows,
                             inputs.tokenizer.fingerprint(), job.data)  # fmt: skip

    def export(checkpoint: Path, final: Path) -> None:
        trunk, head = load_checkpoint_with_head(checkpoint, dtype=torch.float32)
        score = torch.nn.Linear(trunk.args.dim, 1, bias=False)
        score.load_state_dict(head)
        save_reward_model(RewardModel(trunk, score), final, inputs.tokenizer_file, pad)

    def plain(final: Path) -> torch.nn.Module:
        rm = load_reward_model(final)
        return HeadOutputs(rm.trunk, rm.score)

    lengths = [sum(len(i.tokens) for i in g) for g in groups[held]]
    return Task(
        RewardObjective(cfg.rm.loss, cfg.train.seed, data),
        {f"{k}_rows": len(v) for k, v in groups.items()},
        exclusions,
        len(place_groups(lengths, inputs.seq_len)) if held == "eval" else cfg.train.batch_rows,
        export,
        plain,
        has_eval=held == "eval",
    )


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
