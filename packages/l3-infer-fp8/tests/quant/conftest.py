"""Tiny random-weight models: four blocks, so the first/last skip rule leaves two quantised."""

from __future__ import annotations

import pytest
import torch

from l3_core import ModelArgs
from l3_core.model import Transformer


def build(dtype: torch.dtype = torch.bfloat16, seed: int = 0, n_layers: int = 4) -> Transformer:
    args = ModelArgs.from_preset("llama3-tiny", n_layers=n_layers)
    return Transformer.build(args, dtype=dtype, seed=seed).eval()


@pytest.fixture
def model_factory():
    return build
