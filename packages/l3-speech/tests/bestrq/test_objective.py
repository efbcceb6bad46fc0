"""The BEST-RQ loss is taken on the masked frames only, against the clean features' targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from l3_speech.bestrq.masking import span_mask
from l3_speech.bestrq.objective import BestRQArgs, BestRQObjective, masked_frames
from l3_speech.encoder.conformer import ConformerEncoder, padding_mask
from l3_speech.encoder.presets import encoder_preset


def test_head_sees_exactly_the_masked_valid_frames_and_loss_is_their_multi_softmax() -> None:
    torch.manual_seed(0)
    args = BestRQArgs(n_codes=32, n_codebooks=3, mask_prob=0.05, mask_span=8)
    obj = BestRQObjective(ConformerEncoder(encoder_preset("test")), args).eval()
    seen: dict[str, torch.Tensor] = {}
    obj.encoder.register_forward_hook(lambda m, i, o: seen.__setitem__("encoded", o[0]))
    obj.head.register_forward_hook(
        lambda m, i, o: seen.__setitem__("head_in", i[0]) or seen.__setitem__("logits", o)
    )
    feats = torch.randn(2, 90, 80)
    lengths = torch.tensor([90, 61])
    loss, metrics = obj(feats, lengths, torch.Generator().manual_seed(5))

    mask = span_mask(lengths, 90, 0.05, 8, torch.Generator().manual_seed(5))
    frames = masked_frames(mask, 4) & ~padding_mask((lengths + 3) // 4, 23)
    torch.testing.assert_close(seen["head_in"], seen["encoded"][frames])
    stacked, _ = obj.encoder.stacked(feats, lengths)
    targets = obj.quantizer(stacked)[frames]
    want = F.cross_entropy(seen["logits"].view(-1, 3, 32).flatten(0, 1), targets.flatten())
    torch.testing.assert_close(loss, want)
    assert 0 < metrics["masked_fraction"] < 1


def test_masked_frames_pools_four_input_frames() -> None:
    m = torch.zeros(1, 10, dtype=torch.bool)
    m[0, 5] = True
    assert masked_frames(m, 4).tolist() == [[False, True, False]]


def test_quantiser_buffers_travel_with_the_state_dict() -> None:
    obj = BestRQObjective(
        ConformerEncoder(encoder_preset("test")), BestRQArgs(n_codes=16, n_codebooks=2)
    )
    state = obj.state_dict()
    assert state["quantizer.codebooks"].shape == (2, 16, 16)
    assert state["quantizer.projection"].shape == (2, 320, 16)
