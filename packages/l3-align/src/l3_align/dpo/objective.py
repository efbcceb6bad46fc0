"""DPO as an objective: packed preference pairs in, the weighted preference loss out.

Each pair is a group of two sequences in one packed row (``member`` 0 chosen, 1 rejected).
The forward step gives per-token NLL; the loss sums ``-NLL`` over each sequence's
``logp_mask`` tokens (response tokens, formatting tokens out when ``dpo.mask_special_tokens``)
into the policy log-probs, over ``nll_mask`` (the chosen response with its formatting tokens)
into the NLL term, and reads the cached reference log-probs the packer wrote at each
sequence's first position (``ref_logp``). The loss is a sum over pairs, counted in pairs, so a
split of the rows over ranks computes the same mean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from l3_align.config import DPOConfig
from l3_align.data.encode import EncodedPair, EncodedSequence
from l3_align.data.packing import PackItem
from l3_align.dpo.losses import LossParams, PairLogps, combined_loss
from l3_align.train.packed import PackedObjective
from l3_core.train.objective import LossParts, StepResult

if TYPE_CHECKING:
    from l3_align.train.packed import DataFactory

COLUMNS = (
    "tokens",
    "labels",
    "positions",
    "doc_ids",
    "group",
    "member",
    "logp_mask",
    "nll_mask",
    "ref_logp",
)


def logp_mask(seq: EncodedSequence, mask_special: bool) -> np.ndarray:
    """The tokens a response's log-prob sums over."""
    return seq.scored & ~seq.special if mask_special else seq.scored


def pair_items(
    pair: EncodedPair, mask_special: bool, reference: tuple[float, float] = (0.0, 0.0)
) -> list[PackItem]:
    """The chosen and rejected sequences as one packing group."""
    items = []
    for seq, is_chosen, ref in (
        (pair.chosen, True, reference[0]),
        (pair.rejected, False, reference[1]),
    ):
        ref_at = np.zeros(len(seq), np.float64)
        ref_at[1] = ref  # shifted to the sequence's first position by the packer
        items.append(
            PackItem(
                seq.tokens,
                {
                    "logp_mask": logp_mask(seq, mask_special),
                    "nll_mask": seq.scored & is_chosen,
                    "ref_logp": ref_at,
                },
            )
        )
    return items


def sequence_sums(
    micro: dict[str, torch.Tensor], values: torch.Tensor, mask_name: str
) -> torch.Tensor:
    """Per (row, pair, member) sums of ``values`` [b, s] under ``micro[mask_name]``: [b, P, 2]."""
    group, member = micro["group"], micro["member"]
    b = group.shape[0]
    pairs = int(group.max()) + 1
    slot = (torch.arange(b, device=group.device)[:, None] * pairs + group) * 2 + member
    keep = group >= 0
    weights = micro[mask_name].to(values.dtype) if mask_name else 1.0
    out = torch.zeros(b * pairs * 2, dtype=values.dtype, device=values.device)
    out.index_add_(0, slot[keep], (values * weights)[keep])
    return out.view(b, pairs, 2)


def token_nll(model: torch.nn.Module, micro: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-token NLL [b, s] of the labels (the parallel trainer's model call)."""
    return model(micro["tokens"], micro["positions"], micro["doc_ids"], labels=micro["labels"])


def pair_logps(
    micro: dict[str, torch.Tensor], output: torch.Tensor
) -> tuple[PairLogps, torch.Tensor]:
    """The pairs' log-probs (flattened over rows: row * P + pair) and which slots hold one."""
    nll = output.float()
    ones = torch.ones_like(nll)
    policy = sequence_sums(micro, -nll, "logp_mask").flatten(0, 1)
    tokens = sequence_sums(micro, ones, "logp_mask").flatten(0, 1)
    chosen_nll = sequence_sums(micro, nll, "nll_mask").flatten(0, 1)[:, 0]
    nll_tokens = sequence_sums(micro, ones, "nll_mask").flatten(0, 1)[:, 0]
    ref = sequence_sums(micro, micro["ref_logp"].float(), "").flatten(0, 1)
    present = sequence_sums(micro, ones, "").flatten(0, 1)
    valid = (present[:, 0] > 0) & (present[:, 1] > 0)
    x = PairLogps(
        policy[:, 0],
        policy[:, 1],
        ref[:, 0],
        ref[:, 1],
        tokens[:, 0],
        tokens[:, 1],
        chosen_nll / nll_tokens.clamp(min=1),
    )
    return x, valid


class DPOObjective(PackedObjective):
    """DPO on the parallel trainer (no head: the last stage gives per-token NLL of the labels,
    the log-probs negated); the figures are per-pair means of the metric sums."""

    columns = COLUMNS
    metric_names: ClassVar[tuple[str, ...]] = (
        "reward_margin",
        "reward_accuracy",
        "chosen_reward",
        "rejected_reward",
        "nll",
    )

    def __init__(self, cfg: DPOConfig, data: DataFactory | None = None) -> None:
        super().__init__(data)
        self.weights = dict(cfg.losses)
        self.params = LossParams(cfg.beta, cfg.label_smoothing, cfg.simpo_beta, cfg.simpo_gamma)

    def figures(self, result: StepResult) -> dict[str, float]:
        n = max(result.count, 1.0)
        return {k: v / n for k, v in result.metrics.items()}

    def forward(self, model: torch.nn.Module, micro: dict[str, torch.Tensor]) -> torch.Tensor:
        return token_nll(model, micro)

    def loss(self, micro: dict[str, torch.Tensor], output: torch.Tensor) -> LossParts:
        x, valid = pair_logps(micro, output)
        per_pair = combined_loss(self.weights, x, self.params)[valid]
        beta = self.params.beta
        chosen = (beta * (x.policy_chosen - x.reference_chosen)).detach()[valid]
        rejected = (beta * (x.policy_rejected - x.reference_rejected)).detach()[valid]
        margin = chosen - rejected
        # a tie counts half: policy == reference gives 0.5, not 0
        accuracy = (margin > 0).float() + 0.5 * (margin == 0).float()
        return LossParts(
            per_pair.sum(),
            valid.sum(),
            {
                "reward_margin": margin.sum(),
                "reward_accuracy": accuracy.sum(),
                "chosen_reward": chosen.sum(),
                "rejected_reward": rejected.sum(),
                "nll": x.chosen_nll.detach()[valid].sum(),
            },
        )
