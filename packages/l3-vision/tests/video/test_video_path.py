"""The video path: the perceiver-resampler aggregator merges each 32 consecutive frames into
one and ignores padding frames; video cross-attention layers with zero gates leave text-only,
image-only and image+video forwards equal to the frozen model's logits exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import random_images, tiny_args

from l3_core.model import Transformer
from l3_vision.args import VideoArgs, video_layers
from l3_vision.checkpoint import load_checkpoint, save_checkpoint
from l3_vision.errors import VisionCheckpointError
from l3_vision.model import VisionLanguageModel
from l3_vision.video import PerceiverResampler, VideoBatch


def _resampler() -> PerceiverResampler:
    torch.manual_seed(0)
    return PerceiverResampler(dim=16, n_tokens=5, n_heads=4, n_layers=2, frames_per_group=32)


def test_each_32_frames_merge_into_one_and_padding_is_ignored() -> None:
    agg = _resampler()
    frames = torch.randn(2, 40, 5, 16)
    mask = torch.ones(2, 40, dtype=torch.long)
    mask[1, 20:] = 0
    with torch.no_grad():
        out, groups = agg(frames, mask)
        assert tuple(out.shape) == (2, 2, 5, 16)
        assert groups.tolist() == [[1, 1], [1, 0]]
        # A padding frame's content never reaches the output.
        changed = frames.clone()
        changed[1, 20:] = 100.0
        torch.testing.assert_close(agg(changed, mask)[0], out, rtol=0, atol=0)
        # Groups are independent: frame 0 moves group 0 only.
        changed = frames.clone()
        changed[0, 0] = torch.randn(5, 16)
        moved = agg(changed, mask)[0]
        assert not torch.allclose(moved[0, 0], out[0, 0])
        torch.testing.assert_close(moved[0, 1], out[0, 1], rtol=0, atol=0)
        assert tuple(agg(torch.randn(1, 64, 5, 16), torch.ones(1, 64))[0].shape) == (1, 2, 5, 16)


def test_video_layers_sit_before_every_fourth_image_layer() -> None:
    assert video_layers((3, 7, 11, 15, 19, 23, 27, 31)) == (15, 31)
    assert video_layers((1, 3)) == ()


def _video(b: int, frames: int, seed: int = 0) -> VideoBatch:
    g = torch.Generator().manual_seed(seed)
    pixels = torch.zeros(b, frames, 4, 3, 32, 32)
    pixels[:, :, 0] = torch.randn(b, frames, 3, 32, 32, generator=g)
    mask = torch.ones(b, frames, dtype=torch.long)
    mask[-1, frames // 2 :] = 0
    return VideoBatch(pixels, mask)


def _models() -> tuple[VisionLanguageModel, Transformer]:
    args = tiny_args(video=VideoArgs(cross_attention_layers=(1,), frames_per_group=4))
    frozen = Transformer.build(args.text, seed=0)
    return VisionLanguageModel.build(args, frozen, seed=0), frozen


def test_zero_video_gates_leave_every_forward_unchanged_exactly() -> None:
    model, frozen = _models()
    tokens = torch.randint(0, 96, (2, 9), generator=torch.Generator().manual_seed(3))
    images, xmask = random_images(2), torch.ones(2, 9, 1, 4, dtype=torch.long)
    video = _video(2, 6)
    with torch.no_grad():
        want = frozen(tokens)
        assert torch.equal(model(tokens), want)
        assert torch.equal(model(tokens, images, xmask), want)
        assert torch.equal(model(tokens, video=video), want)
        assert torch.equal(model(tokens, images, xmask, video=video), want)
        model.video_layers["1"].attn_gate.fill_(0.5)
        assert not torch.allclose(model(tokens, video=video), want)
        assert torch.equal(model(tokens, images, xmask), want)  # no video: layer skipped
        # Text before <|video|> (video_mask 0) attends to nothing: its MLP stays off, and
        # with the MLP gate shut its logits are the frozen model's.
        vmask = torch.zeros(2, 9, dtype=torch.long)
        vmask[:, 4:] = 1
        model.video_layers["1"].attn_gate.zero_()
        model.video_layers["1"].mlp_gate.fill_(0.5)
        got = model(tokens, video=video, video_mask=vmask)
        assert torch.equal(got[:, :4], want[:, :4])
        assert not torch.allclose(got[:, 4:], want[:, 4:])


def test_aggregator_and_video_layers_train_the_language_model_does_not() -> None:
    model, _ = _models()
    with torch.no_grad():
        model.video_layers["1"].attn_gate.fill_(0.3)
    tokens = torch.tensor([[model.args.video_token_id, 5, 6, 7]])
    model.loss(tokens, torch.tensor([[-100, 6, 7, 8]]), video=_video(1, 5)).backward()
    assert model.aggregator.latents.grad.abs().sum() > 0
    assert model.aggregator.layers[0].wq.weight.grad.abs().sum() > 0
    assert model.video_layers["1"].attention.wv.weight.grad.abs().sum() > 0
    assert model.encoder.trunk.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.language.layers[0].attention.wq.weight.grad is None
    assert model.extra_embeddings.weight.grad[1].abs().sum() > 0  # <|video|>


def test_video_model_round_trips_in_the_l3_format_and_refuses_hf(tmp_path: Path) -> None:
    model, _ = _models()
    with torch.no_grad():
        for p in (model.video_layers["1"].attn_gate, model.cross_layers["1"].mlp_gate):
            p.fill_(0.4)
    save_checkpoint(model, tmp_path / "l3")
    back = load_checkpoint(tmp_path / "l3")
    assert back.args == model.args
    tokens = torch.tensor([[model.args.video_token_id, 5, 6, 7]])
    video = _video(1, 5)
    with torch.no_grad():
        assert torch.equal(back(tokens, video=video), model.eval()(tokens, video=video))
    with pytest.raises(VisionCheckpointError, match="Mllama has no video path"):
        save_checkpoint(model, tmp_path / "hf", format="hf")
