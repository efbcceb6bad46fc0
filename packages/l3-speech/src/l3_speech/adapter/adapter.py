"""The adapter (section 8.1): a stride-2 convolution (80 ms per output), one rotary Transformer
layer, and a linear projection to the language model's embedding size (~100M in the paper)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from l3_speech.encoder.attention import SelfAttention
from l3_speech.encoder.conformer import padding_mask
from l3_speech.errors import SpeechConfigError


@dataclass(frozen=True)
class AdapterArgs:
    dim: int = 3072
    n_heads: int = 24
    ffn_dim: int = 4096
    conv_kernel: int = 3
    conv_stride: int = 2
    rope_theta: float = 10_000.0

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise SpeechConfigError(
                f"adapter.dim {self.dim} must split into n_heads {self.n_heads} heads of even size"
            )

    def replace(self, **changes: Any) -> AdapterArgs:
        return dataclasses.replace(self, **changes)


ADAPTER_PRESETS: dict[str, AdapterArgs] = {
    "llama3-speech": AdapterArgs(),
    "tiny": AdapterArgs(dim=256, n_heads=4, ffn_dim=512),
    "test": AdapterArgs(dim=32, n_heads=4, ffn_dim=64),
}


def adapter_preset(name: str, **changes: Any) -> AdapterArgs:
    try:
        args = ADAPTER_PRESETS[name]
    except KeyError:
        raise SpeechConfigError(
            f"unknown adapter preset {name!r}; available: {', '.join(ADAPTER_PRESETS)}"
        ) from None
    return args.replace(**changes) if changes else args


class SpeechAdapter(nn.Module):
    """Encodings [b, t, encoder_dim] -> embeddings [b, ceil(t / stride), lm_dim]."""

    def __init__(self, args: AdapterArgs, encoder_dim: int, lm_dim: int) -> None:
        super().__init__()
        self.args = args
        self.conv = nn.Conv1d(
            encoder_dim,
            args.dim,
            args.conv_kernel,
            stride=args.conv_stride,
            padding=(args.conv_kernel - 1) // 2,
        )
        self.attention_norm = nn.LayerNorm(args.dim)
        self.attention = SelfAttention(
            args.dim, args.n_heads, rotary=True, rope_theta=args.rope_theta
        )
        self.ffn_norm = nn.LayerNorm(args.dim)
        self.w1 = nn.Linear(args.dim, args.ffn_dim)
        self.w2 = nn.Linear(args.ffn_dim, args.dim)
        self.output_norm = nn.LayerNorm(args.dim)
        self.proj = nn.Linear(args.dim, lm_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        k, s = self.args.conv_kernel, self.args.conv_stride
        return (lengths + 2 * ((k - 1) // 2) - k) // s + 1

    def forward(
        self, encoded: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        valid = ~padding_mask(lengths, encoded.shape[1])
        x = self.conv(encoded.masked_fill(~valid[..., None], 0.0).transpose(1, 2)).transpose(1, 2)
        out_lengths = self.output_lengths(lengths)
        key_padding = padding_mask(out_lengths, x.shape[1])
        x = x + self.attention(self.attention_norm(x), key_padding)
        x = x + self.w2(F.silu(self.w1(self.ffn_norm(x))))
        return self.proj(self.output_norm(x)), out_lengths

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
