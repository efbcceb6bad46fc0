"""Weights of :class:`torchaudio.models.Conformer` under this encoder's names.

torchaudio's Conformer has no input projection (it takes ``input_dim`` features directly),
so the mapping covers the blocks (:meth:`ConformerEncoder.blocks`). Per layer:

| torchaudio (``conformer_layers.{i}.``)  | ours (``layers.{i}.``)            |
|---|---|
| ``ffn1.sequential.0`` / ``.1`` / ``.4``    | ``ffn1.norm`` / ``ffn1.w1`` / ``ffn1.w2`` |
| ``self_attn_layer_norm``                | ``attention_norm``                |
| ``self_attn.in_proj_weight`` / ``_bias``  | ``attention.wqkv.weight`` / ``.bias`` (same q, k, v stacking) |
| ``self_attn.out_proj``                  | ``attention.wo``                  |
| ``conv_module.layer_norm``              | ``conv.norm``                     |
| ``conv_module.sequential.0`` / ``.2`` / ``.3`` / ``.5`` | ``conv.pointwise_in`` / ``conv.depthwise`` / ``conv.conv_norm`` / ``conv.pointwise_out`` |
| ``ffn2.sequential.*``                   | ``ffn2.*`` as ffn1                |
| ``final_layer_norm``                    | ``final_norm``                    |

No tensor is reshaped or permuted: every mapped pair has the same shape.
"""

from __future__ import annotations

import re

import torch

_RULES: list[tuple[str, str]] = [
    (r"ffn(\d)\.sequential\.0\.", r"ffn\1.norm."),
    (r"ffn(\d)\.sequential\.1\.", r"ffn\1.w1."),
    (r"ffn(\d)\.sequential\.4\.", r"ffn\1.w2."),
    (r"self_attn_layer_norm\.", "attention_norm."),
    (r"self_attn\.in_proj_(weight|bias)$", r"attention.wqkv.\1"),
    (r"self_attn\.out_proj\.", "attention.wo."),
    (r"conv_module\.layer_norm\.", "conv.norm."),
    (r"conv_module\.sequential\.0\.", "conv.pointwise_in."),
    (r"conv_module\.sequential\.2\.", "conv.depthwise."),
    (r"conv_module\.sequential\.3\.", "conv.conv_norm."),
    (r"conv_module\.sequential\.5\.", "conv.pointwise_out."),
    (r"final_layer_norm\.", "final_norm."),
]


def torchaudio_name_to_ours(name: str) -> str:
    """``conformer_layers.3.self_attn.out_proj.weight`` -> ``layers.3.attention.wo.weight``."""
    match = re.fullmatch(r"conformer_layers\.(\d+)\.(.+)", name)
    if match is None:
        raise KeyError(f"not a torchaudio Conformer tensor name: {name!r}")
    rest = match.group(2)
    for pattern, repl in _RULES:
        new, n = re.subn(pattern, repl, rest)
        if n:
            return f"layers.{match.group(1)}.{new}"
    raise KeyError(f"no mapping for torchaudio Conformer tensor {name!r}")


def from_torchaudio_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torchaudio Conformer state dict renamed for :class:`ConformerEncoder` (blocks only)."""
    return {torchaudio_name_to_ours(k): v for k, v in state.items()}
