"""Tiny shapes shared by the tests."""

from __future__ import annotations

import pytest
import torch

from l3_core.args import ModelArgs
from l3_vision.args import VisionArgs, encoder_preset
from l3_vision.preprocess import ImageBatch


def tiny_args(**changes) -> VisionArgs:
    text = ModelArgs.from_preset("llama3-tiny", n_layers=4, vocab_size=96, max_seq_len=64)
    args = VisionArgs(encoder=encoder_preset("vit-tiny"), text=text, cross_attention_layers=(1, 3))
    return args.replace(**changes) if changes else args


def random_images(
    batch: int, images: int = 1, seed: int = 0, tile: int = 32, max_tiles: int = 4
) -> ImageBatch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 9, (batch, images), generator=g)
    layouts = [(1, 1), (1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (4, 1)]
    mask = torch.zeros(batch, images, max_tiles, dtype=torch.long)
    for i in range(batch):
        for j in range(images):
            r, c = layouts[int(ids[i, j]) - 1]
            mask[i, j, : r * c] = 1
    pixels = (
        torch.randn(batch, images, max_tiles, 3, tile, tile, generator=g)
        * mask[..., None, None, None]
    )
    return ImageBatch(
        pixels, ids, mask, [[int(mask[i, j].sum()) for j in range(images)] for i in range(batch)]
    )


@pytest.fixture
def args() -> VisionArgs:
    return tiny_args()
