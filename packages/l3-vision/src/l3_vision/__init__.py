"""l3-vision: vision for the l3 herd, the compositional way (Llama 3 paper, section 7).

A timm ViT image encoder with gated global layers and multi-layer features, gated
cross-attention adapters inserted into a frozen l3-core :class:`~l3_core.model.Transformer`,
aspect-ratio-preserving tiling, Hugging Face ``MllamaForConditionalGeneration`` checkpoint
interop, adapter pre-training on image-text pairs, and video (PyAV frames, a perceiver-resampler
temporal aggregator, video cross-attention). Torch-heavy names import lazily.
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
    "VideoArgs": "l3_vision.args",
    "VideoBatch": "l3_vision.video",
    "read_frames": "l3_vision.video",
    "preprocess_videos": "l3_vision.video",
    "ImageEncoder": "l3_vision.encoder",
    "VisionLanguageModel": "l3_vision.model",
    "ImageBatch": "l3_vision.preprocess",
    "preprocess_images": "l3_vision.preprocess",
    "load_checkpoint": "l3_vision.checkpoint",
    "save_checkpoint": "l3_vision.checkpoint",
}

if TYPE_CHECKING:
    from l3_vision.args import EncoderArgs, VideoArgs, VisionArgs
    from l3_vision.checkpoint import load_checkpoint, save_checkpoint
    from l3_vision.encoder import ImageEncoder
    from l3_vision.model import VisionLanguageModel
    from l3_vision.preprocess import ImageBatch, preprocess_images
    from l3_vision.video import VideoBatch, preprocess_videos, read_frames


__getattr__ = lazy_attributes("l3_vision", _LAZY)


__all__ = [
    "DatasetError",
    "EncoderArgs",
    "ImageBatch",
    "ImageEncoder",
    "ImageError",
    "MissingExtraError",
    "VideoArgs",
    "VideoBatch",
    "VisionArgs",
    "VisionCheckpointError",
    "VisionConfigError",
    "VisionError",
    "VisionLanguageModel",
    "__version__",
    "load_checkpoint",
    "preprocess_images",
    "preprocess_videos",
    "read_frames",
    "save_checkpoint",
]
