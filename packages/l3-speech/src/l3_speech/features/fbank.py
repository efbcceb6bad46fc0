"""80-dim log-mel filterbank features (Kaldi's definition, 25 ms windows every 10 ms) with
utterance mean/variance normalisation."""

from __future__ import annotations

import torch

from l3_speech.errors import AudioInputError
from l3_speech.features.audio import SAMPLE_RATE

N_MELS = 80
FRAME_SHIFT_MS = 10.0
FRAME_LENGTH_MS = 25.0
# Kaldi's filterbank expects 16-bit sample values; the log floor is tuned for that scale.
_INT16_SCALE = 32768.0


def log_mel(
    samples: torch.Tensor, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS
) -> torch.Tensor:
    """Log-mel features [frames, n_mels] of mono ``samples`` [n] (no dither: deterministic)."""
    import torchaudio.compliance.kaldi as kaldi

    if samples.dim() != 1:
        raise AudioInputError(f"expected mono samples [n], got shape {tuple(samples.shape)}")
    min_samples = int(sample_rate * FRAME_LENGTH_MS / 1000)
    if samples.numel() < min_samples:
        raise AudioInputError(
            f"audio of {samples.numel()} samples is shorter than one {FRAME_LENGTH_MS:g} ms window"
        )
    return kaldi.fbank(
        samples.float().unsqueeze(0) * _INT16_SCALE,
        num_mel_bins=n_mels,
        sample_frequency=float(sample_rate),
        frame_length=FRAME_LENGTH_MS,
        frame_shift=FRAME_SHIFT_MS,
        dither=0.0,
        energy_floor=0.0,
    )


def normalize_utterance(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean, unit variance per mel bin over the utterance's frames."""
    mean = features.mean(dim=0, keepdim=True)
    std = features.std(dim=0, unbiased=False, keepdim=True)
    return (features - mean) / (std + eps)


def utterance_features(samples: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """The model's input: normalised log-mel features [frames, 80]."""
    return normalize_utterance(log_mel(samples, sample_rate))
