"""l3-vision: vision for the l3 herd, the compositional way (Llama 3 paper, section 7).

A timm ViT image encoder with gated global layers and multi-layer features, gated
cross-attention adapters inserted into a frozen l3-core :class:`~l3_core.model.Transformer`,
aspect-ratio-preserving tiling, Hugging Face ``MllamaForConditionalGeneration`` checkpoint
interop and adapter pre-training on image-text pairs. Torch-heavy names import lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3_core.lazy import lazy_attributes
from l3_core.versions import package_version
from l3_vision.errors import (
    DatasetError,
    ImageError,
    MissingExtraError,
    VisionCheckpointError,
    VisionConfigError,
    VisionError,
)

__version__ = package_version("l3-vision")

_LAZY = {
    "VisionArgs": "l3_vision.args",
    "EncoderArgs": "l3_vision.args",
    "ImageEncoder": "l3_vision.encoder",
    "VisionLanguageModel": "l3_vision.model",
    "ImageBatch": "l3_vision.preprocess",
    "preprocess_images": "l3_vision.preprocess",
    "load_checkpoint": "l3_vision.checkpoint",
    "save_checkpoint": "l3_vision.checkpoint",
}

if TYPE_CHECKING:
    from l3_vision.args import EncoderArgs, VisionArgs
    from l3_vision.checkpoint import load_checkpoint, save_checkpoint
    from l3_vision.encoder import ImageEncoder
    from l3_vision.model import VisionLanguageModel
    from l3_vision.preprocess import ImageBatch, preprocess_images


__getattr__ = lazy_attributes("l3_vision", _LAZY)


__all__ = [
    "DatasetError",
    "EncoderArgs",
    "ImageBatch",
    "ImageEncoder",
    "ImageError",
    "MissingExtraError",
    "VisionArgs",
    "VisionCheckpointError",
    "VisionConfigError",
    "VisionError",
    "VisionLanguageModel",
    "__version__",
    "load_checkpoint",
    "preprocess_images",
    "save_checkpoint",
]
