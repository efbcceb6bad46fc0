"""Post-training reuses l3-align's losses: SFT equals the caption loss; DPO against a
reference equal to the policy is log 2 plus the paper's 0.2 x chosen NLL, in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import random_images, tiny_args

from l3_vision.model import VisionLanguageModel
from l3_vision.training.objective import CaptionBatch, image_attention

pytest.importorskip("l3_align", reason="the post-training hook needs l3-align installed")
from l3_vision.training.post import dpo_loss, response_logps, sft_loss


def _batch(model: VisionLanguageModel, words: list[list[int]]) -> CaptionBatch:
    image = model.args.image_token_id
    seqs = [[image, *w] for w in words]
    tokens = torch.tensor([s[:-1] for s in seqs])
    targets = torch.tensor([s[1:] for s in seqs])  # every caption token scored
    images = random_images(len(words), max_tiles=4)
    return CaptionBatch(tokens, targets, images, image_attention(images, tokens.shape[1]))


def _model() -> VisionLanguageModel:
    model = VisionLanguageModel.build(tiny_args(), seed=0)
    with torch.no_grad():
        for layer in model.cross_layers.values():
            layer.attn_gate.fill_(0.5)
            layer.mlp_gate.fill_(0.5)
    return model


def test_sft_loss_is_the_caption_loss() -> None:
    model = _model()
    batch = _batch(model, [[5, 6, 7, 8], [9, 10, 11, 12]])
    want = model.loss(batch.tokens, batch.targets, batch.images, batch.cross_attention_mask)
    torch.testing.assert_close(sft_loss(model, batch), want)


def test_dpo_against_itself_is_log2_plus_nll_and_trains_the_adapters() -> None:
    model = _model()
    chosen = _batch(model, [[5, 6, 7, 8]])
    rejected = _batch(model, [[5, 9, 9, 9]])
    with torch.no_grad():
        reference = (response_logps(model, chosen)[0], response_logps(model, rejected)[0])
        logp, n = response_logps(model, chosen)
    loss = dpo_loss(model, chosen, rejected, reference)
    torch.testing.assert_close(loss, torch.tensor(math.log(2) - 0.2 * float(logp / n)))
    loss.backward()
    assert model.cross_layers["1"].attention.wv.weight.grad.abs().sum() > 0
    assert model.language.layers[0].attention.wq.weight.grad is None
