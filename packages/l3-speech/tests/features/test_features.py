"""Log-mel features equal Kaldi's fbank; resampling, normalisation and SpecAugment behave."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi
from hypothesis import given, settings
from hypothesis import strategies as st

from l3_speech.errors import AudioInputError
from l3_speech.features.audio import read_audio, resample
from l3_speech.features.fbank import log_mel, normalize_utterance, utterance_features
from l3_speech.features.specaugment import SpecAugment


def _tone(rate: int, seconds: float = 0.5, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * math.pi * hz * t)).astype(np.float32)


def test_log_mel_is_kaldi_fbank_80_bins_every_10_ms() -> None:
    x = torch.from_numpy(_tone(16000, 1.0))
    f = log_mel(x)
    assert f.shape == (98, 80)
    want = kaldi.fbank(x[None] * 32768, num_mel_bins=80, dither=0.0, energy_floor=0.0)
    torch.testing.assert_close(f, want)


def test_a_tone_read_at_44_1_khz_gives_the_16_khz_features(tmp_path) -> None:
    soundfile.write(tmp_path / "a.wav", _tone(44100), 44100)
    soundfile.write(tmp_path / "b.wav", _tone(16000), 16000)
    a, b = read_audio(tmp_path / "a.wav"), read_audio(tmp_path / "b.wav")
    assert abs(a.numel() - b.numel()) <= 1
    n = min(a.numel(), b.numel())
    fa, fb = log_mel(a[:n]), log_mel(b[:n])
    # The 440 Hz bin dominates in both; levels agree to a fraction of a nat.
    assert fa[5:-5].argmax(1).eq(fb[5:-5].argmax(1)).all()
    # Where the tone's energy is (within e^6 of the peak); far bins hold only leakage.
    strong = fb[5:-5] > fb[5:-5].max() - 6
    assert (fa[5:-5] - fb[5:-5])[strong].abs().max() < 0.5


def test_stereo_is_averaged_to_mono(tmp_path) -> None:
    left = _tone(16000)
    soundfile.write(tmp_path / "s.wav", np.stack([left, np.zeros_like(left)], 1), 16000)
    torch.testing.assert_close(
        read_audio(tmp_path / "s.wav"), torch.from_numpy(left) / 2, atol=1e-4, rtol=0
    )


def test_normalised_features_have_zero_mean_unit_variance_per_bin() -> None:
    f = normalize_utterance(torch.randn(200, 80) * 3 + 7)
    torch.testing.assert_close(f.mean(0), torch.zeros(80), atol=1e-5, rtol=0)
    torch.testing.assert_close(f.std(0, unbiased=False), torch.ones(80), atol=1e-4, rtol=0)


def test_bad_audio_names_the_file_and_the_reason(tmp_path) -> None:
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioInputError, match="junk.wav: unreadable audio"):
        read_audio(tmp_path / "junk.wav")
    soundfile.write(tmp_path / "odd.wav", _tone(12345), 12345)
    with pytest.raises(AudioInputError, match="odd.wav: sample rate 12345 Hz is not a common rate"):
        read_audio(tmp_path / "odd.wav")
    soundfile.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioInputError, match="empty.wav: empty audio"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioInputError, match="shorter than one 25 ms window"):
        log_mel(torch.zeros(100))


def test_specaugment_is_seeded_and_masks_bands_and_spans() -> None:
    f = torch.ones(300, 80)
    aug = SpecAugment(freq_masks=1, freq_width=10, time_masks=1, time_width=20)
    a = aug(f, torch.Generator().manual_seed(0))
    b = aug(f, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    zero_cols = (a == 0).all(0).sum().item()
    zero_rows = (a == 0).all(1).sum().item()
    assert zero_cols <= 10 and zero_rows <= 20
    assert torch.equal(f, torch.ones(300, 80))  # input untouched


@settings(max_examples=20, deadline=None)
@given(st.floats(0.03, 0.3), st.sampled_from([8000, 22050, 48000]))
def test_any_length_at_any_common_rate_gives_finite_normalised_features(
    seconds: float, rate: int
) -> None:
    n = int(seconds * rate)
    x = torch.from_numpy(np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1)
    f = utterance_features(resample(x, rate))
    assert f.shape[1] == 80 and torch.isfinite(f).all()
