"""A gated cross-attention layer (Llama 3 paper, section 7.3; Mllama's cross-attention decoder
layer): text queries attend to projected image features with grouped-query attention and
RMS-normalised queries and keys; the attention and MLP branches each pass through a tanh
gate initialised at zero, so a freshly inserted layer is the identity.

Rows of text with no image to attend to (the text before the first image) keep their MLP
branch at zero; their attention branch, as in transformers' Mllama, spreads over every image
token (its mask row is cleared rather than left empty, which would be NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.args import ModelArgs
from l3_core.model.feed_forward import FeedForward
from l3_core.model.norm import RMSNorm


@dataclass
class ImageContext:
    """What every cross-attention layer reads: image tokens [b, k, dim], the attention mask
    [b, 1, s, k] (True = attend; None = every text token sees every image token) and the
    rows that have any image [b, s, 1] (None = all)."""

    states: torch.Tensor
    mask: torch.Tensor | None
    rows_with_image: torch.Tensor | None


class CrossAttention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.kv_heads, args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * args.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.kv_heads * args.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * args.head_dim, args.dim, bias=False)
        self.q_norm = RMSNorm(args.head_dim, args.norm_eps)
        self.k_norm = RMSNorm(args.head_dim, args.norm_eps)

    def forward(self, x: torch.Tensor, image: ImageContext) -> torch.Tensor:
        b, s, _ = x.shape
        k_len = image.states.shape[1]
        q = self.q_norm(self.wq(x).view(b, s, self.n_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(
            self.wk(image.states).view(b, k_len, self.n_kv_heads, self.head_dim)
        ).transpose(1, 2)
        v = self.wv(image.states).view(b, k_len, self.n_kv_heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=image.mask, enable_gqa=self.n_kv_heads != self.n_heads
        )
        return self.wo(out.transpose(1, 2).reshape(b, s, -1))


class CrossAttentionLayer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = CrossAttention(args)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args.dim, args.ffn_hidden_dim)
        self.mlp_gate = nn.Parameter(torch.zeros(1))

    def forward(self, h: torch.Tensor, image: ImageContext) -> torch.Tensor:
        h = h + self.attn_gate.tanh() * self.attention(self.attention_norm(h), image)
        mlp = self.feed_forward(self.ffn_norm(h))
        if image.rows_with_image is not None:
            mlp = mlp * image.rows_with_image
        return h + self.mlp_gate.tanh() * mlp

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """Projections N(0, 1/fan_in), norms 1, gates 0 (the layer starts as the identity).

        A fixed std of 0.02 (right for widths in the thousands) shrinks each of the image path's
        projections (projector, wv, wo) by 0.02 * sqrt(fan_in) ~ 0.2 at small widths, so the
        gated branch starts ~1e-3 of the residual stream and the gates get no steady gradient
        sign; 1/sqrt(fan_in) keeps every projection at unit gain whatever the width.
        """
        for linear in (
            self.attention.wq,
            self.attention.wk,
            self.attention.wv,
            self.attention.wo,
            self.feed_forward.w1,
            self.feed_forward.w3,
            self.feed_forward.w2,
        ):
            init_unit_gain(linear, generator)
        for norm in (
            self.attention_norm,
            self.ffn_norm,
            self.attention.q_norm,
            self.attention.k_norm,
        ):
            norm.reset_parameters()
        self.attn_gate.zero_()
        self.mlp_gate.zero_()


def init_unit_gain(linear: nn.Linear, generator: torch.Generator | None = None) -> None:
    """Weights N(0, 1/fan_in) (unit gain), bias zero."""
    nn.init.normal_(linear.weight, std=linear.in_features**-0.5, generator=generator)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
