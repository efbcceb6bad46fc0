"""A saved reward model loads back, and transformers' LlamaForSequenceClassification reads it
and gives the same scores."""

from __future__ import annotations

import json

import pytest
import torch

from l3_align.errors import AlignModelError
from l3_align.rm.checkpoint import load_reward_model, save_reward_model
from l3_align.rm.model import RewardModel
from l3_core.args import ModelArgs
from l3_core.model import Transformer

transformers = pytest.importorskip("transformers", reason="the export test needs the test extra")


def make_rm(tie: bool) -> RewardModel:
    args = ModelArgs(
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=50,
        max_seq_len=64,
        tie_embeddings=tie,
    )
    rm = RewardModel(Transformer.build(args, seed=1))
    rm.init_score(torch.Generator().manual_seed(2))
    return rm.eval()


@pytest.mark.parametrize("tie", [False, True])
def test_transformers_scores_equal_ours(tmp_path, tie: bool) -> None:
    rm = make_rm(tie)
    tok = tmp_path / "tok.model"
    tok.write_bytes(b"stand-in tokenizer bytes")
    out = save_reward_model(rm, tmp_path / "final", tok, pad_id=0)
    assert (out / "tokenizer.model").read_bytes() == b"stand-in tokenizer bytes"
    seqs = [[3, 7, 9, 11, 4], [5, 6, 2]]
    with torch.no_grad():
        ours = rm.score_sequences(seqs)
        hf = transformers.LlamaForSequenceClassification.from_pretrained(out).eval()
        theirs = torch.stack([hf(torch.tensor([s])).logits[0, 0] for s in seqs])
        back = load_reward_model(out).score_sequences(seqs)
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-5)
    torch.testing.assert_close(back, ours, rtol=0, atol=0)


def test_a_causal_lm_directory_is_not_a_reward_model(tmp_path) -> None:
    rm = make_rm(False)
    out = save_reward_model(rm, tmp_path / "final", None)
    config = json.loads((out / "config.json").read_text())
    config["architectures"] = ["LlamaForCausalLM"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(AlignModelError, match="expected \\[LlamaForSequenceClassification\\]"):
        load_reward_model(out)


def test_missing_directory_is_a_model_error(tmp_path) -> None:
    with pytest.raises(AlignModelError, match="no config.json"):
        load_reward_model(tmp_path / "nothing")
