"""A plain PyTorch training loop of the plain model: the trainer's independent reference.

Same loss (mean over unmasked tokens), AdamW with weight decay on matrices only (as Megatron
groups parameters), global-norm clipping and the same learning rates, with no Megatron code.
Tests check the Megatron trainer against it; the benchmark times both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_core.train.data import Batch


def plain_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.95), eps: float = 1e-8
) -> torch.optim.AdamW:
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=betas,
        eps=eps,
    )


def plain_loss(model: torch.nn.Module, batch: Batch, document_mask: bool = True) -> torch.Tensor:
    tokens = torch.from_numpy(batch.tokens)
    docs = torch.from_numpy(batch.doc_ids) if document_mask else None
    logits = model(tokens, docs)
    losses = F.cross_entropy(
        logits.float().flatten(0, 1), torch.from_numpy(batch.labels).flatten(), reduction="none"
    )
    mask = torch.from_numpy(batch.loss_mask).flatten()
    return (losses * mask).sum() / mask.sum()


def plain_step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    batch: Batch,
    lr: float,
    clip: float,
    document_mask: bool = True,
) -> tuple[float, float]:
    """One optimizer step on ``batch``; returns (loss, grad norm before clipping)."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss = plain_loss(model, batch, document_mask)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    opt.step()
    return float(loss), float(norm)
