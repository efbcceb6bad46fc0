"""Image preprocessing: aspect-ratio-preserving tiling into up to ``max_tiles`` tiles."""

from l3_vision.preprocess.tiling import (
    ImageBatch,
    TileLayout,
    best_canvas,
    fit_to_canvas,
    preprocess_images,
    supported_aspect_ratios,
    tile_image,
)

__all__ = [
    "ImageBatch",
    "TileLayout",
    "best_canvas",
    "fit_to_canvas",
    "preprocess_images",
    "supported_aspect_ratios",
    "tile_image",
]
