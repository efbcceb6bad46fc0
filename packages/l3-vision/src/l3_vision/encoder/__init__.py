"""The image encoder: timm's VisionTransformer as the trunk, extended as Llama 3.2 Vision."""

from l3_vision.encoder.vit import ImageEncoder, TanhGate

__all__ = ["ImageEncoder", "TanhGate"]
