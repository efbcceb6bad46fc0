"""HF interop: a random-init tiny ``MllamaForConditionalGeneration`` loads into l3-vision with the
same logits (fp32, 1e-4), and what l3-vision saves transformers reads back with the same logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import random_images

from l3_vision import load_checkpoint, save_checkpoint
from l3_vision.errors import VisionCheckpointError

transformers = pytest.importorskip(
    "transformers", reason="the reference model comes from transformers (test extra)"
)

VOCAB = 96


def _hf_model(seed: int = 0):
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    config = MllamaConfig(
        vision_config=dict(
            hidden_size=32,
            num_hidden_layers=4,
            num_global_layers=2,
            attention_heads=4,
            intermediate_size=64,
            vision_output_dim=96,
            image_size=32,
            patch_size=8,
            intermediate_layers_indices=[1, 3],
            max_num_tiles=4,
        ),
        text_config=dict(
            vocab_size=VOCAB,
            hidden_size=64,
            num_hidden_layers=6,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=96,
            cross_attention_layers=[1, 4],
            pad_token_id=VOCAB - 1,
            bos_token_id=1,
            eos_token_id=2,
            max_position_embeddings=64,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
        ),
        image_token_index=VOCAB,
    )
    torch.manual_seed(seed)
    model = MllamaForConditionalGeneration(config).eval()
    with torch.no_grad():
        # Open every gate (they start at zero) so each path of the model shows in the logits.
        for name, p in model.named_parameters():
            if name.endswith(("gate", "gate_attn", "gate_ffn", "attn_gate", "mlp_gate")):
                p.copy_(torch.rand_like(p) * 1.5 + 0.2)
    return model


def _inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (2, 10), generator=g)
    tokens[0, 3] = VOCAB  # <|image|> after three text tokens
    tokens[1, 0] = VOCAB
    images = random_images(2, images=1, seed=seed)
    xmask = torch.zeros(2, 10, 1, 4, dtype=torch.long)
    for b, start in ((0, 3), (1, 0)):
        xmask[b, start:, 0, : images.num_tiles[b][0]] = (
            1  # text before the image attends to nothing
        )
    return tokens, images, xmask


def _hf_logits(model, tokens, images, xmask) -> torch.Tensor:
    with torch.no_grad():
        return model(
            input_ids=tokens,
            pixel_values=images.pixel_values,
            aspect_ratio_ids=images.aspect_ratio_ids,
            aspect_ratio_mask=images.aspect_ratio_mask,
            cross_attention_mask=xmask,
        ).logits


def test_loads_mllama_checkpoint_with_same_logits(tmp_path: Path) -> None:
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    ours = load_checkpoint(tmp_path / "hf")
    assert ours.args.cross_attention_layers == (1, 3)
    tokens, images, xmask = _inputs()
    with torch.no_grad():
        got = ours(tokens, images, xmask)
    torch.testing.assert_close(got, _hf_logits(hf, tokens, images, xmask), atol=1e-4, rtol=1e-4)
    with torch.no_grad():  # and text only, where both skip the cross-attention layers
        torch.testing.assert_close(
            ours(tokens.clamp(max=VOCAB - 1)),
            hf(input_ids=tokens.clamp(max=VOCAB - 1)).logits,
            atol=1e-4,
            rtol=1e-4,
        )


def test_saved_hf_checkpoint_reads_back_in_transformers(tmp_path: Path) -> None:
    from transformers import MllamaForConditionalGeneration

    hf = _hf_model(seed=1)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_checkpoint(tmp_path / "hf")
    save_checkpoint(ours, tmp_path / "ours-hf", format="hf")
    back = MllamaForConditionalGeneration.from_pretrained(tmp_path / "ours-hf").eval()
    tokens, images, xmask = _inputs(seed=1)
    torch.testing.assert_close(
        _hf_logits(back, tokens, images, xmask),
        _hf_logits(hf, tokens, images, xmask),
        atol=1e-5,
        rtol=1e-5,
    )
    save_checkpoint(ours, tmp_path / "ours-l3", format="l3")
    native = load_checkpoint(tmp_path / "ours-l3")
    with torch.no_grad():
        assert torch.equal(native(tokens, images, xmask), ours(tokens, images, xmask))


def test_bad_checkpoints_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(VisionCheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent")
    hf = _hf_model()
    hf.save_pretrained(tmp_path / "hf")
    config = (tmp_path / "hf" / "config.json").read_text()
    (tmp_path / "hf" / "config.json").write_text(
        config.replace('"model_type": "mllama"', '"model_type": "llava"', 1)
    )
    with pytest.raises(VisionCheckpointError, match="model_type='llava'"):
        load_checkpoint(tmp_path / "hf")
