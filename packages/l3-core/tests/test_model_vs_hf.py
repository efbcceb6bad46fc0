"""Logits of l3's Transformer against Hugging Face transformers' LlamaForCausalLM."""

import pytest
import torch
from hf_reference import LLAMA31_SCALING, hf_llama

from l3_core import kernels, load_checkpoint, save_checkpoint
from l3_core.errors import CheckpointError

CASES = {
    "gqa": {},
    "mha": {"kv_heads": 4},
    "rope-scaled": {"rope_scaling": LLAMA31_SCALING},
    "tied": {"tied": True, "rope_scaling": LLAMA31_SCALING},
}


@pytest.mark.parametrize("backend", [None, "cpu"])  # the plain model; with the CPU kernels
@pytest.mark.parametrize("case", CASES)
def test_hf_checkpoint_loads_with_identical_logits(tmp_path, case, backend):
    ref = hf_llama(**CASES[case])
    ref.save_pretrained(tmp_path / "hf")
    model = load_checkpoint(tmp_path / "hf")
    if backend is not None:
        kernels.apply(model, backend)
    tokens = torch.randint(0, 320, (2, 200))
    with torch.no_grad():
        expected = ref(tokens).logits
        got = model(tokens)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert model.args.tie_embeddings == CASES[case].get("tied", False)
    assert (model.args.rope_scaling is not None) == ("rope_scaling" in CASES[case])


@pytest.mark.parametrize("case", ["gqa", "tied"])
def test_transformers_reads_back_what_we_save(tmp_path, case):
    from transformers import LlamaForCausalLM

    ref = hf_llama(**CASES[case])
    ref.save_pretrained(tmp_path / "hf")
    model = load_checkpoint(tmp_path / "hf")
    save_checkpoint(model, tmp_path / "ours", format="hf")
    back = LlamaForCausalLM.from_pretrained(tmp_path / "ours", attn_implementation="eager").eval()
    tokens = torch.randint(0, 320, (1, 64))
    with torch.no_grad():
        torch.testing.assert_close(back(tokens).logits, model(tokens), atol=1e-5, rtol=1e-5)
    assert back.config.tie_word_embeddings == CASES[case].get("tied", False)


def test_rope_scaling_survives_a_transformers_round_trip(tmp_path):
    ref = hf_llama(rope_scaling=LLAMA31_SCALING)
    ref.save_pretrained(tmp_path / "hf")
    model = load_checkpoint(tmp_path / "hf")
    assert model.args.rope_scaling.factor == 8.0
    assert model.args.rope_scaling.original_max_position_embeddings == 64


def test_hf_config_of_another_architecture_is_refused(tmp_path):
    ref = hf_llama()
    ref.save_pretrained(tmp_path / "hf")
    import json

    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    cfg["model_type"] = "mistral"
    cfg["architectures"] = ["MistralForCausalLM"]
    (tmp_path / "hf" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="mistral"):
        load_checkpoint(tmp_path / "hf")


@pytest.mark.parametrize("backend", [None, "cpu"])
@pytest.mark.parametrize("case", ["gqa", "tied"])
def test_training_gradients_equal_transformers(tmp_path, case, backend):
    """Loss and every parameter's gradient of a training step (the plain model, or the CPU
    kernels' autograd nodes, and the chunked loss) against transformers' ``labels=`` loss, by
    checkpoint name."""
    from l3_core import Transformer
    from l3_core.checkpoint.hf import to_hf_state

    ref = hf_llama(**CASES[case])
    ref.save_pretrained(tmp_path / "hf")
    model = load_checkpoint(tmp_path / "hf").train()
    if backend is not None:
        kernels.apply(model, backend)
    ref.train()
    tokens = torch.randint(0, 320, (2, 200))
    targets = torch.cat([tokens[:, 1:], torch.full((2, 1), -100)], dim=1)
    loss = model.loss(tokens, targets)
    loss.backward()
    expected = ref(tokens, labels=tokens).loss
    expected.backward()
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)
    grads = Transformer(model.args)
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads.parameters()):
            g.copy_(p.grad)
    ours = to_hf_state(grads.state_dict())
    theirs = {name: p.grad for name, p in ref.named_parameters()}
    assert ours.keys() == theirs.keys()
    for name, grad in theirs.items():
        torch.testing.assert_close(ours[name], grad, atol=1e-6, rtol=1e-4, msg=name)
