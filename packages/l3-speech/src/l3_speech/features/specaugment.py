"""SpecAugment (Park et al. 2019): frequency and time masks, drawn from a seeded generator."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SpecAugment:
    """``freq_masks`` bands of up to ``freq_width`` bins and ``time_masks`` spans of up to
    ``time_width`` frames (never more than ``max_time_ratio`` of the utterance each), set to 0
    (the mean of normalised features)."""

    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: int = 20
    max_time_ratio: float = 0.1

    def __call__(self, features: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A masked copy of ``features`` [frames, bins]."""
        out = features.clone()
        frames, bins = out.shape
        for _ in range(self.freq_masks):
            lo, hi = _span(bins, self.freq_width, generator)
            out[:, lo:hi] = 0.0
        time_width = min(self.time_width, int(frames * self.max_time_ratio))
        for _ in range(self.time_masks):
            lo, hi = _span(frames, time_width, generator)
            out[lo:hi] = 0.0
        return out


def _span(size: int, max_width: int, generator: torch.Generator) -> tuple[int, int]:
    """A random [lo, hi) of width in [0, max_width] inside [0, size)."""
    if max_width <= 0 or size <= 0:
        return 0, 0
    width = int(torch.randint(0, min(max_width, size) + 1, (1,), generator=generator))
    lo = int(torch.randint(0, size - width + 1, (1,), generator=generator))
    return lo, lo + width
