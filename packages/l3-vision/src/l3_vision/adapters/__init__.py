"""Gated cross-attention adapters that let a frozen language model attend to image features."""

from l3_vision.adapters.cross_attention import CrossAttention, CrossAttentionLayer, ImageContext

__all__ = ["CrossAttention", "CrossAttentionLayer", "ImageContext"]
