"""Shared fixtures: a small sentencepiece tokenizer trained on the synthetic task's text."""

from __future__ import annotations

import pytest

from l3_align.synthetic import train_task_tokenizer


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    return train_task_tokenizer(tmp_path_factory.mktemp("tok") / "tokenizer.model")
