"""Presets are data; the paper's encoder is about 1B parameters."""

from __future__ import annotations

import pytest
import torch

from l3_speech.encoder.conformer import ConformerEncoder, stack_frames
from l3_speech.encoder.presets import ENCODER_PRESETS, encoder_preset
from l3_speech.errors import SpeechConfigError


def test_paper_encoder_has_about_one_billion_parameters() -> None:
    args = encoder_preset("llama3-speech-1b")
    assert (args.dim, args.n_layers, args.n_heads, args.ffn_dim, args.conv_kernel) == (
        1536,
        24,
        24,
        4096,
        7,
    )
    assert args.rotary and args.frame_ms == 40.0
    with torch.device("meta"):
        n = ConformerEncoder(args).num_params()
    assert 0.95e9 < n < 1.05e9, n


def test_unknown_preset_and_bad_shapes_are_config_errors() -> None:
    with pytest.raises(SpeechConfigError, match="unknown encoder preset 'huge'; available: "):
        encoder_preset("huge")
    with pytest.raises(SpeechConfigError, match="conv_kernel 4 must be odd"):
        encoder_preset("test", conv_kernel=4)
    with pytest.raises(SpeechConfigError, match="n_heads 5"):
        encoder_preset("test", n_heads=5)
    assert set(ENCODER_PRESETS) >= {"llama3-speech-1b", "tiny", "test"}


def test_stacking_puts_four_frames_side_by_side_and_rounds_lengths_up() -> None:
    x = torch.arange(2 * 10 * 3, dtype=torch.float32).view(2, 10, 3)
    out, lengths = stack_frames(x, torch.tensor([10, 5]), 4)
    assert out.shape == (2, 3, 12)
    torch.testing.assert_close(out[0, 1], torch.cat([x[0, 4], x[0, 5], x[0, 6], x[0, 7]]))
    assert out[0, 2, 6:].abs().sum() == 0  # zero tail
    assert lengths.tolist() == [3, 2]


def test_rotary_encoder_is_position_aware_and_plain_one_is_permutation_equivariant_in_attention() -> (
    None
):
    # With kernel 1 the conv sees one frame, so only rotary attention can tell positions apart.
    torch.manual_seed(0)
    for rotary, equivariant in ((False, True), (True, False)):
        enc = ConformerEncoder(encoder_preset("test", rotary=rotary, conv_kernel=1)).eval()
        x = torch.randn(1, 12, enc.args.dim)
        perm = torch.randperm(12)
        lengths = torch.tensor([12])
        with torch.no_grad():
            a = enc.blocks(x, lengths)[0, perm]
            b = enc.blocks(x[:, perm], lengths)[0]
        assert torch.allclose(a, b, atol=1e-5) is equivariant
