"""The frozen random-projection quantiser of BEST-RQ.

Each of ``n_codebooks`` codebooks projects a stacked frame (4 x 80 = 320 values) to
``code_dim`` with its own random matrix and takes the cosine nearest of its ``n_codes``
random unit vectors. Nothing here is trained; the projections and codebooks are buffers, so
they are saved with the checkpoint and the targets of a resumed run are the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BestRQQuantizer(nn.Module):
    projection: torch.Tensor
    codebooks: torch.Tensor

    def __init__(
        self,
        input_dim: int = 320,
        code_dim: int = 16,
        n_codes: int = 8192,
        n_codebooks: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        # Xavier-uniform projections and unit-norm Gaussian codes, as the BEST-RQ paper.
        bound = (6.0 / (input_dim + code_dim)) ** 0.5
        projection = (torch.rand(n_codebooks, input_dim, code_dim, generator=gen) * 2 - 1) * bound
        codebooks = F.normalize(torch.randn(n_codebooks, n_codes, code_dim, generator=gen), dim=-1)
        self.register_buffer("projection", projection)
        self.register_buffer("codebooks", codebooks)

    @property
    def n_codebooks(self) -> int:
        return self.codebooks.shape[0]

    @property
    def n_codes(self) -> int:
        return self.codebooks.shape[1]

    @torch.no_grad()
    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        """Targets [..., n_codebooks] (int64 code ids) for stacked frames [..., input_dim]."""
        z = F.normalize(torch.einsum("...i,kic->...kc", stacked.float(), self.projection), dim=-1)
        # Codes are unit vectors, so the largest dot product is the cosine nearest neighbour.
        return torch.einsum("...kc,knc->...kn", z, self.codebooks).argmax(dim=-1)
