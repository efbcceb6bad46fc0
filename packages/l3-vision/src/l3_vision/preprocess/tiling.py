"""Aspect-ratio-preserving tiling, as Llama 3.2 Vision (and ``MllamaImageProcessor``) does it.

An image is resized (bilinear, antialiased, aspect ratio kept) to fit the best canvas of
``rows x cols`` tiles with ``rows * cols <= max_tiles``, zero-padded to that canvas on the
bottom and right, normalised with mean = std = 0.5, and cut into tiles in row-major order.
The best canvas is the one needing the smallest upscale (or, when every canvas needs a
downscale, the largest downscale), ties broken by the smallest area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as tvF

from l3_vision.errors import ImageError

MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


@lru_cache(maxsize=16)
def supported_aspect_ratios(max_tiles: int) -> tuple[tuple[int, int], ...]:
    """Every (rows, cols) with rows * cols <= ``max_tiles``, in the references' order
    (for 4: 1x1, 1x2, 1x3, 1x4, 2x1, 2x2, 3x1, 4x1); an image's aspect-ratio id is its
    index here plus one (0 marks a padding image)."""
    return tuple(
        (r, c)
        for r in range(1, max_tiles + 1)
        for c in range(1, max_tiles + 1)
        if r * c <= max_tiles
    )


def best_canvas(height: int, width: int, max_tiles: int, tile_size: int) -> tuple[int, int]:
    """(rows, cols) of the canvas chosen for an image of ``height`` x ``width`` pixels."""
    best: tuple[float, int, tuple[int, int]] | None = None
    scales = []
    for rows, cols in supported_aspect_ratios(max_tiles):
        scale = min(rows * tile_size / height, cols * tile_size / width)
        scales.append((scale, rows * cols, (rows, cols)))
    upscales = [s for s in scales if s[0] >= 1]
    if upscales:
        chosen = min(s[0] for s in upscales)
    else:
        chosen = max(s[0] for s in scales)
    for scale, area, layout in scales:
        # Same scale: the smallest canvas (first in order on equal area, as the references).
        if scale == chosen and (best is None or area < best[1]):
            best = (scale, area, layout)
    assert best is not None
    return best[2]


def fit_to_canvas(
    height: int, width: int, canvas_h: int, canvas_w: int, tile_size: int
) -> tuple[int, int]:
    """New (height, width) of the image inside the canvas: aspect ratio kept, never below one
    tile along the limiting side, never above the canvas."""
    target_w = min(max(width, tile_size), canvas_w)
    target_h = min(max(height, tile_size), canvas_h)
    scale_h, scale_w = target_h / height, target_w / width
    if scale_w < scale_h:
        return min(math.floor(height * scale_w) or 1, target_h), target_w
    return target_h, min(math.floor(width * scale_h) or 1, target_w)


@dataclass(frozen=True)
class TileLayout:
    rows: int
    cols: int

    @property
    def n_tiles(self) -> int:
        return self.rows * self.cols


def tile_image(
    image: Image.Image, tile_size: int, max_tiles: int
) -> tuple[torch.Tensor, TileLayout]:
    """Tiles [n_tiles, 3, tile_size, tile_size] (normalised) of one RGB image and their layout."""
    pixels = tvF.pil_to_tensor(image.convert("RGB"))  # uint8 [3, h, w]
    h, w = pixels.shape[-2:]
    rows, cols = best_canvas(h, w, max_tiles, tile_size)
    new_h, new_w = fit_to_canvas(h, w, rows * tile_size, cols * tile_size, tile_size)
    resized = tvF.resize(
        pixels, [new_h, new_w], interpolation=tvF.InterpolationMode.BILINEAR, antialias=True
    )
    padded = tvF.pad(resized, [0, 0, cols * tile_size - new_w, rows * tile_size - new_h], fill=0)
    # Rescale by 1/255 folded into the normalisation, as the reference processor does.
    mean = torch.tensor(MEAN) * 255.0
    std = torch.tensor(STD) * 255.0
    normed = tvF.normalize(padded.to(torch.float32), mean.tolist(), std.tolist())
    tiles = normed.view(3, rows, tile_size, cols, tile_size).permute(1, 3, 0, 2, 4)
    return tiles.reshape(rows * cols, 3, tile_size, tile_size), TileLayout(rows, cols)


@dataclass
class ImageBatch:
    """Model inputs for a batch of samples, each with up to ``max_images`` images.

    ``pixel_values`` [b, images, max_tiles, 3, t, t]; ``aspect_ratio_ids`` [b, images] (0 for
    a padding image); ``aspect_ratio_mask`` [b, images, max_tiles] (1 for a real tile; tile 0
    is always 1, as in the references); ``num_tiles`` per sample and image.
    """

    pixel_values: torch.Tensor
    aspect_ratio_ids: torch.Tensor
    aspect_ratio_mask: torch.Tensor
    num_tiles: list[list[int]]


def preprocess_images(
    images: Sequence[Sequence[Image.Image]] | Sequence[Image.Image],
    tile_size: int,
    max_tiles: int = 4,
) -> ImageBatch:
    """Tile every image of every sample (a flat list means one image per sample)."""
    if not images:
        raise ImageError("no images given")
    samples = [list(s) if isinstance(s, (list, tuple)) else [s] for s in images]
    if any(not s for s in samples):
        raise ImageError("a sample has no images")
    ratios = supported_aspect_ratios(max_tiles)
    b, n = len(samples), max(len(s) for s in samples)
    pixel_values = torch.zeros(b, n, max_tiles, 3, tile_size, tile_size)
    ids = torch.zeros(b, n, dtype=torch.long)
    mask = torch.zeros(b, n, max_tiles, dtype=torch.long)
    mask[:, :, 0] = 1
    num_tiles: list[list[int]] = []
    for i, sample in enumerate(samples):
        counts = []
        for j, image in enumerate(sample):
            tiles, layout = tile_image(image, tile_size, max_tiles)
            pixel_values[i, j, : layout.n_tiles] = tiles
            ids[i, j] = ratios.index((layout.rows, layout.cols)) + 1
            mask[i, j, : layout.n_tiles] = 1
            counts.append(layout.n_tiles)
        num_tiles.append(counts)
    return ImageBatch(pixel_values, ids, mask, num_tiles)
