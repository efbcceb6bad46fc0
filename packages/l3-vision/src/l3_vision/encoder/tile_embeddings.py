"""Tile and aspect-ratio position embeddings with tanh gates (Mllama's precomputed embeddings).

Each supported aspect ratio (id 1..R; 0 is a padding image) has its own learned embedding, so
a tile knows where it sits in its image's grid. Gates start at zero: at initialisation the
encoder sees plain per-tile patch positions.
"""

from __future__ import annotations

import torch
from torch import nn


class AspectRatioEmbedding(nn.Module):
    """One vector per (aspect ratio, tile), added to every token of the tile, gated."""

    def __init__(self, n_ratios: int, max_tiles: int, dim: int) -> None:
        super().__init__()
        self.max_tiles, self.dim = max_tiles, dim
        self.embedding = nn.Embedding(n_ratios + 1, max_tiles * dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, aspect_ratio_ids: torch.Tensor) -> torch.Tensor:
        """``x`` [images, tiles, tokens, dim], ``aspect_ratio_ids`` [images]."""
        emb = self.embedding(aspect_ratio_ids).view(-1, self.max_tiles, 1, self.dim)
        return x + emb * self.gate.tanh()


class TilePositionEmbedding(nn.Module):
    """Patch positions blended with per-(aspect ratio, tile, patch) positions by one gate:
    ``(1 - tanh g) * patch_positions + tanh g * tile_positions[ratio]``."""

    def __init__(self, n_ratios: int, max_tiles: int, n_tokens: int, dim: int) -> None:
        super().__init__()
        self.max_tiles, self.n_tokens, self.dim = max_tiles, n_tokens, dim
        self.tile_embedding = nn.Embedding(n_ratios + 1, max_tiles * n_tokens * dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(
        self, x: torch.Tensor, patch_positions: torch.Tensor, aspect_ratio_ids: torch.Tensor
    ) -> torch.Tensor:
        """``x`` [images, tiles, tokens, dim]; ``patch_positions`` [tokens, dim]."""
        gate = self.gate.tanh()
        x = x + (1 - gate) * patch_positions.view(1, 1, self.n_tokens, self.dim)
        tile = self.tile_embedding(aspect_ratio_ids).view(
            -1, self.max_tiles, self.n_tokens, self.dim
        )
        return x + gate * tile
