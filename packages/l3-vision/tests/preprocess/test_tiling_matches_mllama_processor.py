"""Tiling gives the same tensors as transformers' MllamaImageProcessor for the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from l3_vision.preprocess import best_canvas, preprocess_images, supported_aspect_ratios

transformers = pytest.importorskip(
    "transformers", reason="the reference processor comes from transformers (test extra)"
)


def _image(h: int, w: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


SIZES = [(50, 50), (40, 130), (130, 40), (90, 61), (300, 200), (17, 230), (224, 224), (500, 140)]


@pytest.mark.parametrize("tile_size", [28, 56])
def test_same_pixel_values_ids_and_mask_as_mllama_processor(tile_size: int) -> None:
    from transformers import MllamaImageProcessor

    ref = MllamaImageProcessor(size={"height": tile_size, "width": tile_size}, max_image_tiles=4)
    samples = [[_image(h, w, i)] for i, (h, w) in enumerate(SIZES)]
    expected = ref(samples, return_tensors="pt")
    ours = preprocess_images(samples, tile_size=tile_size, max_tiles=4)
    assert ours.pixel_values.shape == expected["pixel_values"].shape
    torch.testing.assert_close(ours.pixel_values, expected["pixel_values"], atol=1e-6, rtol=0)
    assert torch.equal(ours.aspect_ratio_ids, expected["aspect_ratio_ids"])
    assert torch.equal(ours.aspect_ratio_mask, expected["aspect_ratio_mask"])
    assert ours.num_tiles == expected["num_tiles"]


def test_several_images_per_sample_pad_with_id_zero() -> None:
    from transformers import MllamaImageProcessor

    ref = MllamaImageProcessor(size={"height": 28, "width": 28}, max_image_tiles=4)
    samples = [[_image(40, 90, 1), _image(90, 40, 2)], [_image(30, 30, 3)]]
    expected = ref(samples, return_tensors="pt")
    ours = preprocess_images(samples, tile_size=28)
    torch.testing.assert_close(ours.pixel_values, expected["pixel_values"], atol=1e-6, rtol=0)
    assert torch.equal(ours.aspect_ratio_ids, expected["aspect_ratio_ids"])
    assert ours.aspect_ratio_ids[1, 1] == 0
    assert torch.equal(ours.aspect_ratio_mask, expected["aspect_ratio_mask"])


def test_aspect_ratios_and_canvas_choice() -> None:
    assert supported_aspect_ratios(4) == (
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 1),
        (2, 2),
        (3, 1),
        (4, 1),
    )
    assert best_canvas(560, 560, 4, 560) == (1, 1)  # exact fit, no upscale
    assert best_canvas(100, 400, 4, 560) == (1, 1)  # small: the smallest upscale wins
    assert best_canvas(1000, 4000, 4, 560) == (1, 4)  # large and wide: one row of four
    assert best_canvas(1000, 1000, 4, 560) == (2, 2)  # large square: downscale into 2x2
