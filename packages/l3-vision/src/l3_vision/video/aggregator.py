"""The temporal aggregator (Llama 3 paper, section 7.2): a perceiver resampler that merges
each ``frames_per_group`` consecutive frames into one.

Learned latents, one per token of a frame, cross-attend to the features of every token of
the group's frames (with a learned per-frame temporal embedding) and to themselves, as in
Flamingo's resampler; padding frames are masked out of the keys. No open reference
implements the paper's aggregator; this follows its description.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResamplerLayer(nn.Module):
    def __init__(self, dim: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm_latents = nn.LayerNorm(dim)
        self.norm_frames = nn.LayerNorm(dim)
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wkv = nn.Linear(dim, 2 * dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(
        self, latents: torch.Tensor, frames: torch.Tensor, key_mask: torch.Tensor
    ) -> torch.Tensor:
        """``latents`` [g, n, d]; ``frames`` [g, k, d]; ``key_mask`` [g, k + n] (True = attend)."""
        g, n, d = latents.shape
        q_in = self.norm_latents(latents)
        kv_in = torch.cat([self.norm_frames(frames), q_in], dim=1)
        heads = lambda x: x.view(g, -1, self.n_heads, d // self.n_heads).transpose(1, 2)  # noqa: E731
        k, v = self.wkv(kv_in).chunk(2, dim=-1)
        out = F.scaled_dot_product_attention(
            heads(self.wq(q_in)), heads(k), heads(v), attn_mask=key_mask[:, None, None, :]
        )
        latents = latents + self.wo(out.transpose(1, 2).reshape(g, n, d))
        return latents + self.ffn(self.ffn_norm(latents))


class PerceiverResampler(nn.Module):
    """Frame features [b, frames, tokens, dim] -> one merged frame per group of
    ``frames_per_group`` consecutive frames: [b, groups, tokens, dim], with the groups' mask
    [b, groups] (1 where the group holds a real frame)."""

    def __init__(
        self, dim: int, n_tokens: int, n_heads: int, n_layers: int, frames_per_group: int
    ) -> None:
        super().__init__()
        self.frames_per_group = frames_per_group
        self.latents = nn.Parameter(torch.randn(n_tokens, dim) * dim**-0.5)
        self.frame_embedding = nn.Parameter(torch.zeros(frames_per_group, dim))
        self.layers = nn.ModuleList(ResamplerLayer(dim, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, frames: torch.Tensor, frame_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, f, n, d = frames.shape
        p = self.frames_per_group
        pad = (-f) % p
        frames = F.pad(frames, (0, 0, 0, 0, 0, pad))
        mask = F.pad(frame_mask.bool(), (0, pad))
        groups = (f + pad) // p
        x = frames.view(b * groups, p, n, d) + self.frame_embedding[None, :, None, :]
        x = x.reshape(b * groups, p * n, d)
        key_mask = torch.cat(
            [
                mask.view(b * groups, p, 1).expand(-1, -1, n).reshape(b * groups, p * n),
                torch.ones(b * groups, n, dtype=torch.bool, device=mask.device),
            ],
            dim=1,
        )
        latents = self.latents.expand(b * groups, n, d)
        for layer in self.layers:
            latents = layer(latents, x, key_mask)
        out = self.norm(latents).view(b, groups, n, d)
        return out, mask.view(b, groups, p).any(dim=-1).long()
