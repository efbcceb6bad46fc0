"""Span masks: every valid frame starts a span of ``span`` frames with probability ``prob``."""

from __future__ import annotations

import torch

from l3_speech.encoder.conformer import padding_mask


def span_mask(
    lengths: torch.Tensor,
    length: int,
    prob: float = 0.025,
    span: int = 32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """[b, length] True at masked frames; spans are cut at the utterance's end and may overlap.

    An utterance with no start drawn gets one at a random frame, so that every utterance
    contributes to the loss (this changes the statistics only of utterances short enough to
    draw no start, which happens with probability (1 - prob) ** frames).
    """
    valid = ~padding_mask(lengths, length)
    starts = (torch.rand(lengths.shape[0], length, generator=generator) < prob) & valid
    forced = torch.floor(torch.rand(lengths.shape[0], generator=generator) * lengths).long()
    none = ~starts.any(dim=1)
    starts[none, forced[none]] = True
    # Frame t is masked when a span started in (t - span, t]: a windowed count of the starts.
    count = torch.cumsum(starts.long(), dim=1)
    before = torch.nn.functional.pad(count, (span, 0))[:, :length]
    return ((count - before) > 0) & valid


def expected_masked_fraction(prob: float, span: int) -> float:
    """The fraction of frames (far from the edges) that a span mask covers."""
    return 1.0 - (1.0 - prob) ** span
