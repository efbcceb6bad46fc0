"""Each preference loss against torchtune's published test vectors (BSD-3; read from
/work/shared/reference/dpo_loss_vectors.json when present, else the copy below)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from l3_align.dpo.losses import PREFERENCE_LOSSES, LossParams, PairLogps, combined_loss

# The repository root's sibling ``shared/`` holds the vectors on the project's machines.
_SHARED = (
    Path(__file__).resolve().parents[4] / ".." / "shared" / "reference" / "dpo_loss_vectors.json"
)
# Copied from that file (source: pytorch/torchtune tests/torchtune/rlhf/loss/test_dpo_loss.py,
# HEAD bd2a0fc7; IPO and SimPO from before commit 6d3e065e6), BSD-3-Clause.
_COPY = {
    "inputs": {
        "policy_chosen_logps": [-0.5, -10.0, -1.0],
        "policy_rejected_logps": [-0.1, -30.0, -21.0],
        "reference_chosen_logps": [-0.5, -10.1, -0.1],
        "reference_rejected_logps": [-0.1, -20.1, -0.1],
    },
    "cases": [
        {
            "loss": "dpo_sigmoid",
            "params": {"beta": 0.1, "label_smoothing": 0.0},
            "expected_losses": [0.6931471806, 0.3132616875, 0.126928011],
        },
        {"loss": "rso_hinge", "params": {"gamma": 0.1}, "expected_losses": [1.0, 0.0, 0.0]},
        {"loss": "ipo", "params": {"tau": 0.1}, "expected_losses": [25.0, 25.0, 225.0]},
        {
            "loss": "simpo",
            "params": {"beta": 2.0, "gamma": 0.5, "label_smoothing": 0.0},
            "expected_losses": [1.5410084538, 0.0, 0.0],
        },
    ],
}
VECTORS = json.loads(_SHARED.read_text()) if _SHARED.is_file() else _COPY

# upstream case name -> (our registry names, how its parameters map onto ours)
_CASES = {
    "dpo_sigmoid": (
        ("sigmoid",),
        lambda q: LossParams(beta=q["beta"], label_smoothing=q["label_smoothing"]),
    ),
    "rso_hinge": (("rso", "hinge"), lambda q: LossParams(beta=q["gamma"])),
    "ipo": (("ipo",), lambda q: LossParams(beta=q["tau"])),
    "simpo": (
        ("simpo",),
        lambda q: LossParams(
            simpo_beta=q["beta"], simpo_gamma=q["gamma"], label_smoothing=q["label_smoothing"]
        ),
    ),
}


def _logps(chosen_tokens: float = 1.0) -> PairLogps:
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in VECTORS["inputs"].items()}
    ones = torch.ones(3, dtype=torch.float64)
    return PairLogps(
        t["policy_chosen_logps"],
        t["policy_rejected_logps"],
        t["reference_chosen_logps"],
        t["reference_rejected_logps"],
        ones * chosen_tokens,
        ones,
        torch.zeros(3, dtype=torch.float64),
    )


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: c["loss"])
def test_loss_matches_published_vectors(case):
    names, params = _CASES[case["loss"]]
    want = torch.tensor(case["expected_losses"], dtype=torch.float64)
    for name in names:
        got = PREFERENCE_LOSSES[name](_logps(), params(case["params"]))
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_every_registered_loss_has_a_vector_or_closed_form_test():
    covered = {n for names, _ in _CASES.values() for n in names} | {"nll"}
    assert set(PREFERENCE_LOSSES) == covered


def test_label_smoothing_is_conservative_dpo():
    x, p = _logps(), LossParams(beta=0.1, label_smoothing=0.2)
    z = 0.1 * x.logits()
    want = -0.8 * F.logsigmoid(z) - 0.2 * F.logsigmoid(-z)
    torch.testing.assert_close(PREFERENCE_LOSSES["sigmoid"](x, p), want)


def test_ipo_and_simpo_use_per_token_means():
    x = _logps(chosen_tokens=2.0)
    c = x.policy_chosen / 2 - x.reference_chosen / 2
    r = x.policy_rejected - x.reference_rejected
    torch.testing.assert_close(PREFERENCE_LOSSES["ipo"](x, LossParams(beta=0.1)), (c - r - 5) ** 2)


def test_combined_loss_is_the_weighted_sum():
    base = _logps()
    x = PairLogps(
        *(
            base.policy_chosen,
            base.policy_rejected,
            base.reference_chosen,
            base.reference_rejected,
            torch.ones(3),
            torch.ones(3),
            torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64),
        )
    )
    p = LossParams()
    got = combined_loss({"sigmoid": 1.0, "nll": 0.2}, x, p)
    torch.testing.assert_close(got, PREFERENCE_LOSSES["sigmoid"](x, p) + 0.2 * x.chosen_nll)
