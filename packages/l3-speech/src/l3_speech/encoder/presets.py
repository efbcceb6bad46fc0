"""Encoder sizes as data: the paper's ~1B Conformer and small CPU ones."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from l3_speech.errors import SpeechConfigError


@dataclass(frozen=True)
class EncoderArgs:
    """A Conformer encoder's shape.

    ``stack`` input frames (10 ms each) are concatenated and projected to ``dim``, so the
    encoder runs at ``10 * stack`` ms per frame. ``rotary`` False gives torchaudio's
    Conformer exactly (plain multi-head attention, no positions).
    """

    n_mels: int = 80
    stack: int = 4
    dim: int = 1536
    n_layers: int = 24
    n_heads: int = 24
    ffn_dim: int = 4096
    conv_kernel: int = 7
    conv_norm: Literal["batch", "layer"] = "batch"
    rotary: bool = True
    rope_theta: float = 10_000.0
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise SpeechConfigError(
                f"encoder.dim {self.dim} must split into n_heads {self.n_heads} heads of even size"
            )
        if self.conv_kernel % 2 == 0 or self.conv_kernel < 1:
            raise SpeechConfigError(
                f"encoder.conv_kernel {self.conv_kernel} must be odd ('same' padding)"
            )
        if self.stack < 1:
            raise SpeechConfigError(f"encoder.stack {self.stack} must be >= 1")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def frame_ms(self) -> float:
        return 10.0 * self.stack

    def replace(self, **changes: Any) -> EncoderArgs:
        return dataclasses.replace(self, **changes)


ENCODER_PRESETS: dict[str, EncoderArgs] = {
    # Section 8.1: 24 layers, width 1,536, macaron FFN of 4,096, kernel 7, 24 rotary heads (~1B).
    "llama3-speech-1b": EncoderArgs(),
    # A CPU model that trains in minutes (the main job's ASR run).
    "tiny": EncoderArgs(dim=144, n_layers=4, n_heads=4, ffn_dim=576, conv_norm="layer"),
    # The smallest one, for tests.
    "test": EncoderArgs(
        dim=32, n_layers=2, n_heads=4, ffn_dim=64, conv_kernel=3, conv_norm="layer"
    ),
}


def encoder_preset(name: str, **changes: Any) -> EncoderArgs:
    """The preset ``name`` with ``changes`` applied."""
    try:
        args = ENCODER_PRESETS[name]
    except KeyError:
        raise SpeechConfigError(
            f"unknown encoder preset {name!r}; available: {', '.join(ENCODER_PRESETS)}"
        ) from None
    return args.replace(**changes) if changes else args
