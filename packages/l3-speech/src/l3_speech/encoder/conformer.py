"""Conformer blocks (Gulati et al. 2020) and the encoder that stacks frames in front of them.

A block is: half-step FFN, self-attention, convolution module, half-step FFN, LayerNorm, each
with a residual, in torchaudio's order (``convolution_first=False``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from l3_speech.encoder.attention import SelfAttention
from l3_speech.encoder.presets import EncoderArgs
from l3_speech.errors import AudioInputError


class FeedForward(nn.Module):
    """LayerNorm, Linear, SiLU, Linear (the macaron half; the block scales it by 0.5)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.w2(self.dropout(F.silu(self.w1(self.norm(x))))))


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of [b, channels, t]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


CONV_NORMS: dict[str, type[nn.Module]] = {"batch": nn.BatchNorm1d, "layer": ChannelLayerNorm}


class ConvModule(nn.Module):
    """LayerNorm, pointwise conv to 2x + GLU, depthwise conv, a norm, SiLU, pointwise conv.

    The norm after the depthwise conv is torchaudio's BatchNorm (``"batch"``), or a LayerNorm
    over the channels of each frame (``"layer"``), which keeps an utterance's encoding
    independent of the batch it is in and of the padding.
    """

    def __init__(self, dim: int, kernel: int, norm: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=(kernel - 1) // 2, groups=dim)
        self.conv_norm = CONV_NORMS[norm](dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        y = self.norm(x).transpose(1, 2)
        y = F.glu(self.pointwise_in(y), dim=1)
        if key_padding is not None:
            # Padding must not leak into valid frames through the depthwise kernel.
            y = y.masked_fill(key_padding[:, None, :], 0.0)
        y = F.silu(self.conv_norm(self.depthwise(y)))
        return self.dropout(self.pointwise_out(y)).transpose(1, 2)


class ConformerBlock(nn.Module):
    def __init__(self, args: EncoderArgs) -> None:
        super().__init__()
        self.ffn1 = FeedForward(args.dim, args.ffn_dim, args.dropout)
        self.attention_norm = nn.LayerNorm(args.dim)
        self.attention = SelfAttention(
            args.dim, args.n_heads, args.rotary, args.rope_theta, args.dropout
        )
        self.attention_dropout = nn.Dropout(args.dropout)
        self.conv = ConvModule(args.dim, args.conv_kernel, args.conv_norm, args.dropout)
        self.ffn2 = FeedForward(args.dim, args.ffn_dim, args.dropout)
        self.final_norm = nn.LayerNorm(args.dim)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor | None) -> torch.Tensor:
        x = x + 0.5 * self.ffn1(x)
        x = x + self.attention_dropout(self.attention(self.attention_norm(x), key_padding))
        x = x + self.conv(x, key_padding)
        x = x + 0.5 * self.ffn2(x)
        return self.final_norm(x)


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """[b, length] True at padded frames."""
    return torch.arange(length, device=lengths.device)[None, :] >= lengths[:, None]


def stack_frames(
    features: torch.Tensor, lengths: torch.Tensor, stack: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """[b, t, n] -> [b, ceil(t / stack), stack * n]: ``stack`` consecutive frames side by side
    (the tail is zero-padded); lengths become ceil(lengths / stack)."""
    b, t, n = features.shape
    pad = (-t) % stack
    if pad:
        features = F.pad(features, (0, 0, 0, pad))
    return features.reshape(b, (t + pad) // stack, stack * n), (lengths + stack - 1) // stack


class ConformerEncoder(nn.Module):
    """Features [b, t, 80] at 10 ms -> encodings [b, t / stack, dim] at ``10 * stack`` ms."""

    def __init__(self, args: EncoderArgs) -> None:
        super().__init__()
        self.args = args
        self.input_proj = nn.Linear(args.stack * args.n_mels, args.dim)
        self.layers = nn.ModuleList(ConformerBlock(args) for _ in range(args.n_layers))

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.stacked(features, lengths)
        return self.blocks(self.input_proj(x), lengths), lengths

    def stacked(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if features.dim() != 3 or features.shape[-1] != self.args.n_mels:
            raise AudioInputError(
                f"features must be [batch, frames, {self.args.n_mels}], got {tuple(features.shape)}"
            )
        return stack_frames(features, lengths, self.args.stack)

    def blocks(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The Conformer blocks on already projected frames ``x`` [b, t, dim]."""
        key_padding = (
            padding_mask(lengths, x.shape[1]) if bool((lengths < x.shape[1]).any()) else None
        )
        for layer in self.layers:
            x = layer(x, key_padding)
        return x

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
