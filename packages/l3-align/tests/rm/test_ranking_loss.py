"""The ranking losses against their closed form: -log sigmoid over the pairs a row holds."""

from __future__ import annotations

import math

import pytest
import torch

from l3_align.errors import AlignConfigError
from l3_align.rm.losses import loss_pairs, preference_accuracy, ranking_loss


def nls(x: float) -> float:
    return math.log1p(math.exp(-x))


def test_three_way_ranking_uses_every_ordered_pair_a_row_holds() -> None:
    # columns: edited, chosen, rejected; row 1 has no edited response
    scores = torch.tensor([[3.0, 1.0, -0.5], [0.0, 2.0, 2.5]])
    present = torch.tensor([[True, True, True], [False, True, True]])
    got = float(ranking_loss(scores, present, loss_pairs("ranking")))
    want = (nls(3 - 1) + nls(3 + 0.5) + nls(1 + 0.5) + nls(2 - 2.5)) / 4
    assert got == pytest.approx(want, abs=1e-6)


def test_bradley_terry_ignores_the_edited_response() -> None:
    scores = torch.tensor([[-9.0, 1.0, -0.5], [0.0, 2.0, 2.5]])
    present = torch.tensor([[True, True, True], [False, True, True]])
    got = float(ranking_loss(scores, present, loss_pairs("bradley_terry")))
    assert got == pytest.approx((nls(1.5) + nls(-0.5)) / 2, abs=1e-6)


def test_accuracy_counts_chosen_above_rejected() -> None:
    scores = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 2.0, 1.0], [0, 1.0, 1.0]])
    assert preference_accuracy(scores) == 0.5


def test_unknown_loss_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(AlignConfigError, match="rm.loss = 'hinge'"):
        loss_pairs("hinge")
