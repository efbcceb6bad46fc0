"""The plain PyTorch Llama 3 model.

Every module here is plain PyTorch (``nn.Linear``, ``F.scaled_dot_product_attention``), the
reference the speed-ups in :mod:`l3_core.kernels` are tested against; a model runs them only
after ``l3_core.kernels.apply(model, "cpu")``.

Extension points:

- Hidden states: ``Transformer.blocks(h, positions, mask)`` returns the states before the final
  norm, ``model.norm(...)`` the normalised ones (a value head reads them); ``forward_hidden``
  runs blocks, norm and head.
- Embeddings in place of tokens: ``model(embeddings=h)`` / ``model.loss(None, targets,
  embeddings=h)`` with ``h = model.embed(tokens)`` and other modalities' embeddings written in
  at placeholder positions.
- Layers between blocks: ``model.layers`` is an ``nn.ModuleList``; override
  ``Transformer.layer_forward(i, layer, h, ...)`` to run extra modules (cross-attention) before
  or after block ``i``.
- Projections: ``attention.wq/wk/wv/wo`` and ``feed_forward.w1/w3/w2`` are separate modules
  under their checkpoint names; any of them may be replaced by a module with the same call
  (an FP8 or int8 linear, an adapter). The kernels keep calling such modules.
- Decoding: ``Transformer.kv_caches`` and ``Transformer.decoder`` give :func:`generate` its
  caches and its one-token step (the kernels override both).
"""

from l3_core.model.attention import Attention, KVCache
from l3_core.model.decoding import DecodeLayout, Decoder, ModuleDecoder
from l3_core.model.feed_forward import FeedForward
from l3_core.model.generate import generate, sample_top_p
from l3_core.model.masks import (
    document_causal_mask,
    document_ids_from_lengths,
    document_positions,
)
from l3_core.model.norm import RMSNorm, rms_norm
from l3_core.model.rope import RotaryTable, apply_rotary, inverse_frequencies
from l3_core.model.transformer import Transformer, TransformerBlock

__all__ = [
    "Attention",
    "DecodeLayout",
    "Decoder",
    "FeedForward",
    "KVCache",
    "ModuleDecoder",
    "RMSNorm",
    "RotaryTable",
    "Transformer",
    "TransformerBlock",
    "apply_rotary",
    "document_causal_mask",
    "document_ids_from_lengths",
    "document_positions",
    "generate",
    "inverse_frequencies",
    "rms_norm",
    "sample_top_p",
]
