"""Rotary position embeddings with theta 500,000 and the Llama 3.1 frequency scaling.

Layout: the "rotate half" convention of Hugging Face checkpoints (the first and second halves
of each head form the rotated pairs), so HF weights load without permuting wq/wk.
"""

from __future__ import annotations

import math

import torch

from l3_core.args import ModelArgs, RopeScaling


def inverse_frequencies(head_dim: int, theta: float, scaling: RopeScaling | None) -> torch.Tensor:
    """Per-pair inverse frequencies [head_dim // 2], float32, scaled the Llama 3.1 way."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim
    inv_freq = 1.0 / (theta**exponents)
    if scaling is None:
        return inv_freq
    low_wavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor
    high_wavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    # Long wavelengths (low frequencies) are slowed by `factor`; short ones are kept; the band
    # between is interpolated smoothly.
    scaled = torch.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor
    )
    smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
    medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(medium, smoothed, scaled)


class RotaryTable:
    """cos and signed-sin tables for positions [0, length), grown on demand, kept per device.

    The sin table is stored as ``cat(-sin, sin)`` over the two halves so that rotating needs no
    negation: ``rotate_half(x) * sin == swap_halves(x) * signed_sin``.
    """

    def __init__(self, args: ModelArgs) -> None:
        self.args = args
        self._cos: torch.Tensor | None = None
        self._sin: torch.Tensor | None = None

    def tables(self, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = self._cos, self._sin
        if cos is None or sin is None or cos.shape[0] < length or cos.device != device:
            size = max(length, 2 * (cos.shape[0] if cos is not None else 0), 256)
            inv = inverse_frequencies(
                self.args.head_dim, self.args.rope_theta, self.args.rope_scaling
            )
            inv = inv.to(device)
            pos = torch.arange(size, device=device, dtype=torch.float32)
            angles = torch.outer(pos, inv)
            cos = self._cos = torch.cat([angles.cos(), angles.cos()], dim=-1)
            sin = self._sin = torch.cat([-angles.sin(), angles.sin()], dim=-1)
        return cos, sin

    def gather(self, positions: torch.Tensor, bound: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, signed sin of shape [*positions.shape, head_dim] for integer ``positions``, all
        below ``bound`` (passed in so that no device synchronisation reads their maximum)."""
        cos, sin = self.tables(bound, positions.device)
        return cos[positions], sin[positions]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [b, s, heads, head_dim] by tables [b, s, head_dim] from :class:`RotaryTable`.

    Computed in ``x``'s dtype, as the reference does, so bf16 activations are not widened.
    """
    half = x.shape[-1] // 2
    cos = cos.to(x.dtype).unsqueeze(2)
    signed_sin = signed_sin.to(x.dtype).unsqueeze(2)
    swapped = torch.cat([x[..., half:], x[..., :half]], dim=-1)
    return x * cos + swapped * signed_sin
