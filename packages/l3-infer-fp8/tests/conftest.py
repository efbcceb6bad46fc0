"""Tiny fp32 models for the engine and server tests."""

from __future__ import annotations

import pytest
import torch

from l3_core import ModelArgs
from l3_core.model import Transformer


def tiny_model(seed: int = 0, **changes) -> Transformer:
    args = ModelArgs.from_preset("llama3-tiny", **changes)
    model = Transformer.build(args, dtype=torch.float32, seed=seed).eval()
    with torch.no_grad():  # non-trivial norms, as a trained model has
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.fixture(scope="session")
def model() -> Transformer:
    return tiny_model()


class CharDecoder:
    """Token t decodes to one letter: enough to test text and stop strings exactly."""

    def decode(self, ids) -> str:
        return "".join(chr(ord("a") + t % 26) for t in ids)
