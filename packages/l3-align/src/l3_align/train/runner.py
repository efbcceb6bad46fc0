"""The single-process training runner shared by SFT, DPO and the reward model.

It runs an objective (:mod:`l3_align.train.seam`) on the plain model: AdamW, linear warmup to a
constant learning rate, gradient clipping, ``metrics.jsonl`` in l3-core's schema (``step``,
``loss``, ``lr``, ``grad_norm``, the objective's metrics, ``val_*`` on evaluation steps),
checkpoints that resume with the same losses, and the final model in ``run_dir/final`` with
its tokenizer. The parallel layouts come from l3-core's trainer once its objective seam lands.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import torch

from l3_align.config import TrainConfig
from l3_align.data.packing import PackedRows
from l3_align.train.batches import PackedEpochs
from l3_align.train.checkpoints import load_training_state, save_training_state
from l3_align.train.seam import Layout, LossParts, TokenLosses
from l3_core.checkpoint import save_checkpoint
from l3_core.io import atomic_write
from l3_core.train.metrics import MetricsLogger, truncate_metrics

log = logging.getLogger(__name__)


class AlignObjective(Protocol):
    metric_names: ClassVar[tuple[str, ...]]

    def micro_batches(self, batch: PackedRows, layout: Layout) -> list[dict[str, torch.Tensor]]: ...

    def forward(self, model: torch.nn.Module, micro: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def loss(self, micro: dict[str, torch.Tensor], output: torch.Tensor) -> LossParts: ...


@dataclass(frozen=True)
class StepSums:
    loss_sum: float
    count: float
    metrics: dict[str, float]

    def means(self, prefix: str = "") -> dict[str, float]:
        n = max(self.count, 1.0)
        out = {f"{prefix}loss": self.loss_sum / n}
        out.update({f"{prefix}{k}": v / n for k, v in self.metrics.items()})
        return out


def run_step(
    objective: AlignObjective,
    net: torch.nn.Module,
    batch: PackedRows,
    layout: Layout,
    backward: bool,
) -> StepSums:
    """Forward (and backward of the mean loss) over every micro-batch of ``batch``."""
    parts = [
        objective.loss(m, objective.forward(net, m)) for m in objective.micro_batches(batch, layout)
    ]
    loss_sum = torch.stack([p.loss_sum for p in parts]).sum()
    count = torch.stack([p.count.to(loss_sum.dtype) for p in parts]).sum()
    if backward:
        (loss_sum / count.clamp(min=1)).backward()
    metrics = {k: float(sum(p.metrics[k].detach() for p in parts)) for k in objective.metric_names}
    return StepSums(float(loss_sum.detach()), float(count), metrics)


@torch.no_grad()
def evaluate(
    objective: AlignObjective, net: torch.nn.Module, data: PackedEpochs, layout: Layout
) -> StepSums:
    was = net.training
    net.eval()
    try:
        return run_step(objective, net, data.all_rows(), layout, backward=False)
    finally:
        net.train(was)


def run_training(
    objective: AlignObjective,
    model: torch.nn.Module,
    train_data: PackedEpochs,
    cfg: TrainConfig,
    run_dir: Path,
    tokenizer_file: Path,
    eval_data: PackedEpochs | None = None,
) -> dict[str, Any]:
    """Train ``model`` in place; returns the last metrics record."""
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=cfg.lr,
        betas=(cfg.beta1, cfg.beta2),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
    )
    start = 0
    state = load_training_state(run_dir, model, optimizer) if cfg.resume else None
    if state is not None:
        start = int(state["step"])
        train_data.load_state_dict(state["data"])
        log.info("resumed %s at step %d", run_dir, start)
    truncate_metrics(run_dir, start)
    layout = Layout(micro_batch_size=cfg.micro_batch_rows)
    net = TokenLosses(model).train()
    logger = MetricsLogger(run_dir, cfg.max_steps, start, True, tensorboard=False, progress=False)
    record: dict[str, Any] = {}
    tokens_seen = int(state.get("tokens", 0)) if state is not None else 0
    try:
        for step in range(start + 1, cfg.max_steps + 1):
            t0 = time.perf_counter()
            lr = cfg.lr * min(1.0, step / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = train_data.next_rows(cfg.batch_rows)
            sums = run_step(objective, net, batch, layout, backward=True)
            grad_norm = _clip(model, cfg.clip_grad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            dt = time.perf_counter() - t0
            step_tokens = int((batch.group >= 0).sum())
            tokens_seen += step_tokens
            record = {
                "step": step,
                **sums.means(),
                "lr": lr,
                "grad_norm": grad_norm,
                "tokens_per_s": step_tokens / dt,
                "mfu": float("nan"),  # this single-process runner measures no device peak
                "seq_len": int(batch.tokens.shape[1]),
                "batch_size": batch.n_rows,
                "rows": batch.n_rows,
                "tokens": tokens_seen,
                "step_time_s": dt,
            }
            last = step == cfg.max_steps
            if eval_data is not None and (last or (cfg.eval_every and step % cfg.eval_every == 0)):
                record.update(evaluate(objective, net, eval_data, layout).means("val_"))
            logger.log(record)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not last:
                save_training_state(
                    run_dir,
                    step,
                    model,
                    optimizer,
                    {"data": train_data.state_dict(), "tokens": tokens_seen},
                    cfg.keep_last,
                )
    finally:
        logger.close()
    save_final(model, run_dir / "final", tokenizer_file)
    return record


def save_final(model: torch.nn.Module, target: Path, tokenizer_file: Path) -> Path:
    """The final model in the l3 format, with the tokenizer it was trained with."""
    save_checkpoint(model, target, "l3")
    with atomic_write(target / "tokenizer.model", "wb") as f:
        f.write(Path(tokenizer_file).read_bytes())
    return target


def _clip(model: torch.nn.Module, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm > 0:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
