"""Post-training of the vision model with l3-align's losses (when l3-align is installed).

SFT is l3-align's :class:`~l3_align.sft.objective.SFTObjective` loss (token-sum cross-entropy
on the response tokens, counted in tokens) on the model's per-token NLL of a
:class:`~l3_vision.training.objective.CaptionBatch`; DPO is l3-align's preference losses by
name (``{"sigmoid": 1.0, "nll": 0.2}``, the paper's recipe) on the summed response log-probs
of a chosen and a rejected batch, the images the same for both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F

from l3_vision.errors import MissingExtraError
from l3_vision.model import VisionLanguageModel
from l3_vision.training.objective import IGNORE, CaptionBatch

PAPER_DPO_LOSSES = {"sigmoid": 1.0, "nll": 0.2}


def _require_align() -> None:
    try:
        import l3_align  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "post-training reuses l3-align's SFT and DPO losses: pip install l3-align"
        ) from None


def token_nll(model: VisionLanguageModel, batch: CaptionBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token NLL [b, s] of the targets (0 where ignored) and the scored-token mask."""
    logits = model(batch.tokens, batch.images, batch.cross_attention_mask).float()
    mask = batch.targets != IGNORE
    nll = F.cross_entropy(logits.transpose(1, 2), batch.targets.clamp(min=0), reduction="none")
    return nll * mask, mask


def sft_loss(model: VisionLanguageModel, batch: CaptionBatch) -> torch.Tensor:
    """Mean response-token NLL through l3-align's SFT loss (its token sum over its count)."""
    _require_align()
    from l3_align.sft.objective import SFTObjective

    nll, mask = token_nll(model, batch)
    parts = SFTObjective().loss({"loss_mask": mask}, nll)
    return parts.loss_sum / parts.count.clamp(min=1)


def response_logps(
    model: VisionLanguageModel, batch: CaptionBatch
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-prob [b] of each row's response tokens and their count [b]."""
    nll, mask = token_nll(model, batch)
    return -nll.sum(-1), mask.sum(-1)


def dpo_loss(
    model: VisionLanguageModel,
    chosen: CaptionBatch,
    rejected: CaptionBatch,
    reference: tuple[torch.Tensor, torch.Tensor],
    weights: Mapping[str, float] = PAPER_DPO_LOSSES,
    params: Any = None,
) -> torch.Tensor:
    """Mean of l3-align's combined preference loss; ``reference`` holds the frozen reference
    model's summed log-probs of the chosen and rejected responses (:func:`response_logps`)."""
    _require_align()
    from l3_align.dpo.losses import LossParams, PairLogps, combined_loss

    pc, nc = response_logps(model, chosen)
    pr, nr = response_logps(model, rejected)
    pairs = PairLogps(pc, pr, reference[0], reference[1], nc, nr, -pc / nc.clamp(min=1))
    return combined_loss(weights, pairs, params or LossParams()).mean()
