"""Adapters on a frozen l3-core Transformer: the text model's logits are untouched at init,
and only the new modules and new token embeddings receive gradients."""

from __future__ import annotations

import torch
from conftest import random_images, tiny_args

from l3_core.model import Transformer
from l3_vision.model import VisionLanguageModel


def _model(seed: int = 0) -> tuple[VisionLanguageModel, Transformer]:
    args = tiny_args()
    frozen = Transformer.build(args.text, seed=seed)
    return VisionLanguageModel.build(args, frozen, seed=seed), frozen


def test_text_only_forward_equals_frozen_model_exactly() -> None:
    model, frozen = _model()
    tokens = torch.randint(0, 96, (2, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(tokens), frozen(tokens))


def test_with_images_zero_gates_give_frozen_logits_exactly() -> None:
    model, frozen = _model()
    tokens = torch.randint(0, 96, (2, 9), generator=torch.Generator().manual_seed(2))
    images = random_images(2)
    xmask = torch.ones(2, 9, 1, 4, dtype=torch.long)
    with torch.no_grad():
        assert torch.equal(model(tokens, images, xmask), frozen(tokens))
        # Opening one gate changes them: the adapter is really in the path.
        model.cross_layers["1"].attn_gate.fill_(0.5)
        assert not torch.allclose(model(tokens, images, xmask), frozen(tokens))


def test_only_new_modules_and_new_token_embeddings_get_gradients() -> None:
    model, _ = _model()
    with torch.no_grad():
        for layer in model.cross_layers.values():
            layer.attn_gate.fill_(0.3)
            layer.mlp_gate.fill_(0.3)
    model.freeze_encoder(True)
    image_id = model.args.image_token_id
    tokens = torch.tensor([[image_id, 5, 6, 7, 8], [image_id, 9, 10, 11, 12]])
    targets = torch.tensor([[-100, 6, 7, 8, 9], [-100, 10, 11, 12, 13]])
    loss = model.loss(tokens, targets, random_images(2), torch.ones(2, 5, 1, 4, dtype=torch.long))
    loss.backward()
    for name, p in model.named_parameters():
        trains = name.startswith(("cross_layers.", "projector.", "extra_embeddings."))
        assert p.requires_grad == trains, name
        if trains:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    # Only the <|image|> row of the new table was used, so only it has a gradient.
    grad = model.extra_embeddings.weight.grad
    assert grad[0].abs().sum() > 0 and grad[1:].abs().sum() == 0


def test_encoder_trains_when_not_frozen() -> None:
    model, _ = _model()
    with torch.no_grad():
        model.cross_layers["1"].attn_gate.fill_(0.3)
    model.freeze_encoder(False)
    tokens = torch.tensor([[model.args.image_token_id, 5, 6]])
    model.loss(tokens, torch.tensor([[-100, 6, 7]]), random_images(1), None).backward()
    assert model.encoder.trunk.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.language.layers[0].attention.wq.weight.grad is None
