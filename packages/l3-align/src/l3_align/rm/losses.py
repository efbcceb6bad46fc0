"""Reward-model losses: Bradley-Terry over ordered pairs of a row's responses.

A loss is a name for the ordered pairs it trains on (data, not an if-chain); each pair
(better, worse) contributes ``-log sigmoid(s_better - s_worse)``, and a row contributes only the
pairs whose responses it holds (Llama 3 paper, 4.1.2: edited > chosen > rejected).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_align.errors import AlignConfigError

# Response kinds, best first: the columns of a [rows, 3] score tensor.
RANKED = ("edited", "chosen", "rejected")

PAIRS: dict[str, tuple[tuple[str, str], ...]] = {
    "bradley_terry": (("chosen", "rejected"),),
    "ranking": (("edited", "chosen"), ("edited", "rejected"), ("chosen", "rejected")),
}


def loss_pairs(name: str) -> tuple[tuple[int, int], ...]:
    """Column pairs (better, worse) of loss ``name``."""
    if name not in PAIRS:
        raise AlignConfigError(f"rm.loss = {name!r}: known losses are {', '.join(sorted(PAIRS))}")
    return tuple((RANKED.index(a), RANKED.index(b)) for a, b in PAIRS[name])


def ranking_loss(
    scores: torch.Tensor, present: torch.Tensor, pairs: tuple[tuple[int, int], ...]
) -> torch.Tensor:
    """Mean of ``-log sigmoid(s_i - s_j)`` over every (i, j) in ``pairs`` both present in a row.

    ``scores`` [rows, 3] (any value where absent), ``present`` [rows, 3] bool."""
    terms, weights = [], []
    for i, j in pairs:
        both = (present[:, i] & present[:, j]).to(scores.dtype)
        diff = torch.where(both.bool(), scores[:, i] - scores[:, j], torch.zeros_like(both))
        terms.append(-F.logsigmoid(diff) * both)
        weights.append(both)
    total = torch.stack(weights).sum()
    if float(total) == 0:
        raise AlignConfigError("no row holds a pair this loss trains on")
    return torch.stack(terms).sum() / total


def preference_accuracy(scores: torch.Tensor) -> float:
    """Share of rows whose chosen response scores above its rejected one."""
    c, r = RANKED.index("chosen"), RANKED.index("rejected")
    return float((scores[:, c] > scores[:, r]).float().mean())
