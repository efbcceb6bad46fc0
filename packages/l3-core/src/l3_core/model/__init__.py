"""The plain PyTorch Llama 3 model."""

from l3_core.model.attention import Attention, KVCache
from l3_core.model.feed_forward import FeedForward
from l3_core.model.generate import generate, sample_top_p
from l3_core.model.masks import (
    document_causal_mask,
    document_ids_from_lengths,
    document_positions,
)
from l3_core.model.norm import RMSNorm
from l3_core.model.rope import apply_rotary, inverse_frequencies
from l3_core.model.transformer import Transformer, TransformerBlock

__all__ = [
    "Attention",
    "FeedForward",
    "KVCache",
    "RMSNorm",
    "Transformer",
    "TransformerBlock",
    "apply_rotary",
    "document_causal_mask",
    "document_ids_from_lengths",
    "document_positions",
    "generate",
    "inverse_frequencies",
    "sample_top_p",
]
