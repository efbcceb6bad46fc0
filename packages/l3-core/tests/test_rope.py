"""RoPE frequencies against the Llama 3.1 scaling rule's numeric table (head_dim 128)."""

import math

import pytest
import torch

from l3_core import RopeScaling
from l3_core.model.rope import inverse_frequencies

# Derived from the reference formula (llama-models apply_scaling), index -> (plain, scaled).
TABLE = {
    0: (1.0, 1.0),
    1: (0.8146172338565447, 0.8146172338565447),
    10: (0.12868737343265052, 0.12868737343265052),
    20: (0.016560440080994446, 0.016560440080994446),
    30: (0.0021311195369119653, 0.0013718935677611381),
    40: (0.0002742481756762073, 3.428102195952591e-05),
    45: (9.838110942370891e-05, 1.2297638677963614e-05),
    50: (3.529227739646723e-05, 4.411534674558404e-06),
    63: (2.455140791131609e-06, 3.068925988914511e-07),
}


def test_plain_and_scaled_inverse_frequencies_match_the_reference_table():
    plain = inverse_frequencies(128, 500000.0, None)
    scaled = inverse_frequencies(128, 500000.0, RopeScaling())
    for i, (p, s) in TABLE.items():
        assert plain[i].item() == pytest.approx(p, rel=1e-6)
        assert scaled[i].item() == pytest.approx(s, rel=1e-6)


def test_scaling_keeps_29_divides_29_and_smooths_6_frequencies():
    plain = inverse_frequencies(128, 500000.0, None)
    scaled = inverse_frequencies(128, 500000.0, RopeScaling())
    ratio = scaled / plain
    assert int(torch.isclose(ratio, torch.tensor(1.0)).sum()) == 29
    assert int(torch.isclose(ratio, torch.tensor(1 / 8)).sum()) == 29
    wavelen = 2 * math.pi / plain
    assert int(((wavelen >= 2048) & (wavelen <= 8192)).sum()) == 6
