"""The quantiser: paper sizes, frozen buffers, cosine nearest neighbour in closed form."""

from __future__ import annotations

import math

import numpy as np
import torch

from l3_speech.bestrq.quantizer import BestRQQuantizer


def _hand_made() -> BestRQQuantizer:
    q = BestRQQuantizer(input_dim=4, code_dim=2, n_codes=4, n_codebooks=2)
    proj = torch.zeros(2, 4, 2)
    proj[0, 0, 0] = proj[0, 1, 1] = 1.0  # codebook 0 sees dims 0, 1
    proj[1, 2, 0] = proj[1, 3, 1] = 1.0  # codebook 1 sees dims 2, 3
    angles = torch.tensor([0.0, 0.5, 1.0, 1.5]) * math.pi  # codes at 0, 90, 180, 270 degrees
    codes = torch.stack([angles.cos(), angles.sin()], dim=-1)
    q.projection.copy_(proj)
    q.codebooks.copy_(torch.stack([codes, codes]))
    return q


def test_targets_are_the_closest_angle_per_codebook() -> None:
    q = _hand_made()
    x = torch.tensor(
        [
            [1.0, 0.1, 0.0, -1.0],  # 6 deg -> 0; 270 deg -> 3
            [-0.2, 2.0, -3.0, 0.4],
        ]
    )  # 96 deg -> 1; 172 deg -> 2
    assert q(x).tolist() == [[0, 3], [1, 2]]


def test_cosine_targets_ignore_the_scale_of_the_input() -> None:
    q = BestRQQuantizer(seed=3)
    x = torch.randn(7, 320, generator=torch.Generator().manual_seed(0))
    assert torch.equal(q(x), q(5.0 * x))


def test_targets_equal_a_numpy_brute_force_nearest_neighbour() -> None:
    q = BestRQQuantizer(n_codes=64, seed=1)
    x = torch.randn(3, 5, 320, generator=torch.Generator().manual_seed(0))
    got = q(x).numpy()
    proj, codes, xs = q.projection.numpy(), q.codebooks.numpy(), x.numpy().reshape(-1, 320)
    for k in range(16):
        z = xs @ proj[k]
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        cos = z @ (codes[k] / np.linalg.norm(codes[k], axis=1, keepdims=True)).T
        np.testing.assert_array_equal(got.reshape(-1, 16)[:, k], cos.argmax(axis=1))


def test_paper_sizes_are_frozen_buffers_in_the_state_dict_and_fixed_by_the_seed() -> None:
    q = BestRQQuantizer()
    assert q.projection.shape == (16, 320, 16) and q.codebooks.shape == (16, 8192, 16)
    assert list(q.parameters()) == []
    assert set(q.state_dict()) == {"projection", "codebooks"}
    torch.testing.assert_close(q.codebooks.norm(dim=-1), torch.ones(16, 8192))
    again = BestRQQuantizer()
    assert torch.equal(q.projection, again.projection) and torch.equal(q.codebooks, again.codebooks)
    assert not torch.equal(q.codebooks, BestRQQuantizer(seed=1).codebooks)
