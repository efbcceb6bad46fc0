"""Training and evaluating the reward model on preference rows (single process).

Each step packs ``batch_size`` rows prompt-once, scores every response, and takes one AdamW
step on the configured ranking loss. ``metrics.jsonl`` gets one line per step (``step``,
``loss``, ``accuracy``, ``lr``, ``grad_norm``, ``step_time_s``; ``eval_loss`` and
``eval_accuracy`` on evaluation steps).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import torch

from l3_align.errors import AlignInputError
from l3_align.rm.config import RewardRunConfig
from l3_align.rm.losses import loss_pairs, preference_accuracy, ranking_loss
from l3_align.rm.model import RewardModel
from l3_align.rm.packing import pack_groups
from l3_align.rm.preferences import EncodedRows, scatter_scores

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"


def batch_scores(
    rm: RewardModel,
    rows: EncodedRows,
    pad_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Scores [rows, 3] (RANKED columns, 0 where absent) of ``rows``, packed prompt-once."""
    packed = pack_groups(rows.groups, pad_id, generator, rm.device)
    flat = list(rm(packed).split(list(packed.group_sizes)))
    return scatter_scores(flat, rows.present)


@torch.no_grad()
def evaluate(
    rm: RewardModel, rows: EncodedRows, pad_id: int, loss: str, batch_size: int
) -> dict[str, float]:
    """Held-out loss and preference accuracy (chosen above rejected) of ``rows``."""
    was_training = rm.training
    rm.eval()
    scores = torch.cat(
        [
            batch_scores(rm, rows.take(range(i, min(i + batch_size, len(rows)))), pad_id)
            for i in range(0, len(rows), batch_size)
        ]
    )
    rm.train(was_training)
    return {
        "loss": float(ranking_loss(scores, rows.present, loss_pairs(loss))),
        "accuracy": preference_accuracy(scores),
    }


def train_reward_model(
    rm: RewardModel,
    rows: EncodedRows,
    cfg: RewardRunConfig,
    run_dir: str | os.PathLike[str],
    pad_id: int = 0,
    eval_rows: EncodedRows | None = None,
) -> list[dict[str, float]]:
    """Train ``rm`` in place; write and return the per-step metric records."""
    cfg.validate()
    if len(rows) == 0:
        raise AlignInputError("no valid preference rows to train on")
    t = cfg.train
    pairs = loss_pairs(cfg.rm.loss)
    gen = torch.Generator().manual_seed(t.seed)
    layout_gen = torch.Generator().manual_seed(t.seed + 1) if cfg.rm.shuffle_responses else None
    opt = torch.optim.AdamW(rm.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    metrics_path = Path(run_dir) / METRICS_FILE
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    records = []
    order: list[int] = []
    rm.train()
    with metrics_path.open("w", encoding="utf-8") as out:
        for step in range(1, t.max_steps + 1):
            if len(order) < t.batch_size:
                order += torch.randperm(len(rows), generator=gen).tolist()
            index, order = order[: t.batch_size], order[t.batch_size :]
            batch = rows.take(index)
            start = time.perf_counter()
            scores = batch_scores(rm, batch, pad_id, layout_gen)
            loss = ranking_loss(scores, batch.present, pairs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            clip = t.grad_clip if t.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(rm.parameters(), clip))
            opt.step()
            record = {
                "step": step,
                "loss": float(loss.detach()),
                "accuracy": preference_accuracy(scores.detach()),
                "lr": t.lr,
                "grad_norm": grad_norm,
                "step_time_s": time.perf_counter() - start,
            }
            due = step == t.max_steps or (t.eval_every and step % t.eval_every == 0)
            if eval_rows is not None and len(eval_rows) and due:
                held = evaluate(rm, eval_rows, pad_id, cfg.rm.loss, t.batch_size)
                record.update(eval_loss=held["loss"], eval_accuracy=held["accuracy"])
            out.write(json.dumps(record) + "\n")
            out.flush()
            records.append(record)
            log.info("step %d loss %.4f accuracy %.3f", step, record["loss"], record["accuracy"])
    rm.eval()
    return records
