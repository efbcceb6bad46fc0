"""The non-rotary encoder is torchaudio's Conformer, weight for weight."""

from __future__ import annotations

import pytest
import torch
from torchaudio.models import Conformer

from l3_speech.encoder.conformer import ConformerEncoder
from l3_speech.encoder.presets import encoder_preset
from l3_speech.encoder.torchaudio_layout import from_torchaudio_state, torchaudio_name_to_ours


def _pair(kernel: int = 7):
    args = encoder_preset("test", rotary=False, conv_norm="batch", conv_kernel=kernel, n_layers=3)
    torch.manual_seed(0)
    ref = Conformer(
        input_dim=args.dim,
        num_heads=args.n_heads,
        ffn_dim=args.ffn_dim,
        num_layers=args.n_layers,
        depthwise_conv_kernel_size=kernel,
    )
    # Non-trivial BatchNorm statistics, so that the mapping of running stats is exercised.
    for m in ref.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    ours = ConformerEncoder(args)
    missing, unexpected = ours.load_state_dict(
        from_torchaudio_state(ref.state_dict()), strict=False
    )
    assert unexpected == []
    assert sorted(missing) == ["input_proj.bias", "input_proj.weight"]
    return ref.eval(), ours.eval(), args


@pytest.mark.parametrize("kernel", [3, 7])
def test_blocks_equal_torchaudio_conformer_fp32(kernel: int) -> None:
    ref, ours, args = _pair(kernel)
    x = torch.randn(3, 29, args.dim, generator=torch.Generator().manual_seed(1))
    lengths = torch.full((3,), 29)
    with torch.no_grad():
        want, _ = ref(x, lengths)
        got = ours.blocks(x, lengths)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_padded_utterance_encodes_as_alone_and_full_rows_still_match_torchaudio() -> None:
    # torchaudio lets padded frames leak into valid ones through the depthwise conv; ours zeros
    # them first, so a padded utterance encodes as it does alone (in eval mode).
    ref, ours, args = _pair(kernel=3)
    x = torch.randn(2, 20, args.dim, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([20, 13])
    with torch.no_grad():
        got = ours.blocks(x, lengths)
        alone = ours.blocks(x[1:, :13], torch.tensor([13]))
    # Ours: an utterance's encoding does not depend on the padding after it.
    torch.testing.assert_close(got[1, :13], alone[0], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        want, _ = ref(x[:1], lengths[:1])
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)


def test_every_torchaudio_tensor_name_maps_and_unknown_names_are_refused() -> None:
    ref = Conformer(
        input_dim=8, num_heads=2, ffn_dim=16, num_layers=1, depthwise_conv_kernel_size=3
    )
    names = {torchaudio_name_to_ours(k) for k in ref.state_dict()}
    assert len(names) == len(ref.state_dict())
    with pytest.raises(KeyError, match="no mapping"):
        torchaudio_name_to_ours("conformer_layers.0.mystery.weight")
    with pytest.raises(KeyError, match="not a torchaudio"):
        torchaudio_name_to_ours("encoder.weight")
