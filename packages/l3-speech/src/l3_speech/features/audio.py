"""Reading audio files with soundfile into mono float32 at the model's sample rate."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from l3_speech.errors import AudioInputError

SAMPLE_RATE = 16_000
# Rates that transcription resamples from without complaint; others are refused as a likely
# mistake (a raw file read with the wrong header, a sensor stream).
COMMON_RATES = frozenset(
    {8_000, 11_025, 12_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000, 96_000}
)


@dataclass(frozen=True)
class AudioInfo:
    """What the header says, read without decoding the samples."""

    sample_rate: int
    frames: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """The sample rate and length of ``path``; an unreadable file is an :class:`AudioInputError`."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError, soundfile.LibsndfileError) as e:
        raise AudioInputError(f"{path}: unreadable audio ({_reason(e)})") from None
    return AudioInfo(int(info.samplerate), int(info.frames))


def read_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Samples of ``path`` as a mono float32 tensor [n] in [-1, 1] at ``sample_rate``.

    Channels are averaged; any rate in :data:`COMMON_RATES` is resampled.
    """
    import soundfile

    path = Path(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, soundfile.LibsndfileError) as e:
        raise AudioInputError(f"{path}: unreadable audio ({_reason(e)})") from None
    if data.shape[0] == 0:
        raise AudioInputError(f"{path}: empty audio (0 samples)")
    if rate not in COMMON_RATES:
        raise AudioInputError(
            f"{path}: sample rate {rate} Hz is not a common rate ({sorted(COMMON_RATES)})"
        )
    bad = np.flatnonzero(~np.isfinite(data).all(axis=1))
    if bad.size:  # a float file can hold NaN/inf, which would poison every feature after it
        raise AudioInputError(
            f"{path}: {bad.size} samples are not finite (first at frame {int(bad[0])})"
        )
    mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1)))
    return resample(mono, rate, sample_rate)


def resample(samples: torch.Tensor, rate: int, target: int = SAMPLE_RATE) -> torch.Tensor:
    """``samples`` [n] from ``rate`` to ``target`` Hz (torchaudio's windowed-sinc resampler)."""
    if rate == target:
        return samples
    return _resampler(rate, target)(samples)


@functools.lru_cache(maxsize=16)
def _resampler(rate: int, target: int) -> torch.nn.Module:
    # Building the sinc kernel costs more than applying it: one per rate pair.
    import torchaudio.transforms as AT

    return AT.Resample(rate, target)


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    return text.split(": ", 1)[-1] if "Error opening" in text else text
