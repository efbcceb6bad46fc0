"""Rotary embeddings whose positions restart at every document of a packed sequence.

Megatron's ``RotaryEmbedding`` gives token ``i`` position ``i``; Llama 3 packs documents and
restarts positions per document (and context parallelism holds non-contiguous chunks), so
:class:`PositionRotary` takes the per-token positions the trainer sets before each forward.
Frequencies come from the plain model's ``inverse_frequencies`` (with the 3.1 scaling).
"""

from __future__ import annotations

import torch
from torch import nn

from l3_core.args import ModelArgs
from l3_core.model.rope import inverse_frequencies


class PositionRotary(nn.Module):
    """Drop-in for GPTModel's ``rotary_pos_emb`` that honours per-token positions."""

    inv_freq: torch.Tensor

    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        inv = inverse_frequencies(args.head_dim, args.rope_theta, args.rope_scaling)
        self.register_buffer("inv_freq", inv, persistent=False)
        self.positions: torch.Tensor | None = None  # [b, s] set by the model before forward

    def get_rotary_seq_len(self, *args, **kwargs) -> int:
        assert self.positions is not None, "PositionRotary.positions must be set before forward"
        return int(self.positions.shape[1])

    def forward(self, seq_len: int, packed_seq: bool = False, cp_group=None) -> torch.Tensor:
        pos = self.positions
        assert pos is not None, "PositionRotary.positions must be set before forward"
        inv = self.inv_freq.to(pos.device)  # built after Megatron moved the model
        freqs = pos.to(inv.dtype)[..., None] * inv  # [b, s, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # rotate-half layout, as in HF Llama
        return emb.transpose(0, 1)[:, :, None, :].contiguous()  # [s, b, 1, hd]
