"""A tiny causal LM directory (l3 format) with the synthetic task's tokenizer."""

from __future__ import annotations

import shutil

import pytest

from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.model import Transformer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp("lm") / "model"
    args = ModelArgs(
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tokenizer.n_words,
        max_seq_len=256,
    )
    save_checkpoint(Transformer.build(args, seed=0), out, format="l3")
    shutil.copyfile(tokenizer.path, out / "tokenizer.model")
    return out
