"""Shared fixtures: a small sentencepiece tokenizer trained on the synthetic task's text."""

from __future__ import annotations

import pytest

from l3_align.synthetic import train_task_tokenizer


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return train_task_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.model")


@pytest.fixture(scope="session")
def model_dir(tokenizer, tmp_path_factory):
    """A tiny random l3 checkpoint with the task tokenizer beside it."""
    import shutil

    from l3_core.args import ModelArgs
    from l3_core.checkpoint import save_checkpoint
    from l3_core.model import Transformer

    args = ModelArgs(
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tokenizer.n_words,
        multiple_of=16,
        max_seq_len=128,
    )
    out = tmp_path_factory.mktemp("model") / "m"
    save_checkpoint(Transformer.build(args, seed=1), out)
    shutil.copyfile(tokenizer.path, out / "tokenizer.model")
    return out


@pytest.fixture
def pref_file(tmp_path):
    from l3_align.synthetic import preference_rows
    from l3_core.jsonl import write_jsonl

    path = tmp_path / "pref.jsonl"
    write_jsonl(path, preference_rows(24, seed=5))
    return path
