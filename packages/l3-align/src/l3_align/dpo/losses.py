"""Preference losses by name, each a small pure function of the pair log-probs.

Every loss maps a :class:`PairLogps` (per pair: the policy's and the reference's summed
log-probs of the chosen and rejected responses, their token counts, the chosen response's mean
token NLL) and :class:`LossParams` to a per-pair loss. A run combines them with weights
(``dpo.losses = {sigmoid = 1.0, nll = 0.2}``, the paper's recipe), so a new loss is a new
registry entry, never a new branch. Formulas follow torchtune's and trl's implementations;
``tests/dpo/test_losses.py`` checks each against the published test vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PairLogps:
    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    reference_chosen: torch.Tensor
    reference_rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor
    chosen_nll: torch.Tensor  # mean token NLL of the chosen response (formatting tokens included)

    def logits(self) -> torch.Tensor:
        """``(pi_c - pi_r) - (ref_c - ref_r)``: how much more the policy prefers chosen."""
        return (self.policy_chosen - self.policy_rejected) - (
            self.reference_chosen - self.reference_rejected
        )

    def mean_logits(self) -> torch.Tensor:
        """:meth:`logits` on per-token mean log-probs (IPO, as trl computes it)."""
        c, r = self.chosen_tokens.clamp(min=1), self.rejected_tokens.clamp(min=1)
        return (self.policy_chosen / c - self.policy_rejected / r) - (
            self.reference_chosen / c - self.reference_rejected / r
        )


@dataclass(frozen=True)
class LossParams:
    beta: float = 0.1
    label_smoothing: float = 0.0
    simpo_beta: float = 2.0
    simpo_gamma: float = 0.5


LossFn = Callable[[PairLogps, LossParams], torch.Tensor]
PREFERENCE_LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    def add(fn: LossFn) -> LossFn:
        PREFERENCE_LOSSES[name] = fn
        return fn

    return add


def _smoothed_logsigmoid(z: torch.Tensor, eps: float) -> torch.Tensor:
    return -F.logsigmoid(z) * (1 - eps) - F.logsigmoid(-z) * eps


@register_loss("sigmoid")
def sigmoid_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """DPO (Rafailov et al. 2023): ``-log sigmoid(beta * logits)``, optionally label-smoothed
    (cDPO)."""
    return _smoothed_logsigmoid(p.beta * x.logits(), p.label_smoothing)


@register_loss("hinge")
def hinge_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """SLiC-HF's hinge on the DPO logits: ``relu(1 - beta * logits)``."""
    return torch.relu(1 - p.beta * x.logits())


@register_loss("rso")
def rso_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """RSO (Liu et al. 2023), the hinge loss on normalised likelihoods that paper trains with
    (torchtune's ``RSOLoss``, ``gamma`` = ``dpo.beta``); RSO's other half, sampling pairs from
    the optimal policy, is a data step, not a loss."""
    return hinge_loss(x, p)


@register_loss("ipo")
def ipo_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """IPO (Azar et al. 2023): ``(logits - 1 / (2 * tau))^2`` with ``tau`` = ``dpo.beta``, on
    per-token mean log-probs."""
    return (x.mean_logits() - 1 / (2 * p.beta)) ** 2


@register_loss("simpo")
def simpo_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """SimPO (Meng et al. 2024), reference-free: ``-log sigmoid(beta * (avg_c - avg_r) -
    gamma)`` on per-token mean log-probs."""
    c, r = x.chosen_tokens.clamp(min=1), x.rejected_tokens.clamp(min=1)
    margin = x.policy_chosen / c - x.policy_rejected / r
    return _smoothed_logsigmoid(p.simpo_beta * margin - p.simpo_gamma, p.label_smoothing)


@register_loss("nll")
def nll_loss(x: PairLogps, p: LossParams) -> torch.Tensor:
    """The chosen response's mean token NLL (paper section 4.1.4, weight 0.2)."""
    return x.chosen_nll


def combined_loss(weights: Mapping[str, float], x: PairLogps, params: LossParams) -> torch.Tensor:
    """Per-pair ``sum(weight * loss)`` over the named losses."""
    total = torch.zeros_like(x.policy_chosen)
    for name, w in weights.items():
        if w:
            total = total + w * PREFERENCE_LOSSES[name](x, params)
    return total
