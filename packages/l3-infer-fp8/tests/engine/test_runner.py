"""The batched step's logits equal the model's own forward pass (fp32), for prefill chunks and
decode tokens of several requests in one step, and replaced modules run as they are."""

from __future__ import annotations

import pytest
import torch
from infer_helpers import tiny_model
from torch import nn

from l3_infer_fp8.engine.kv_cache import PagedKVCache
from l3_infer_fp8.engine.runner import Chunk, ModelRunner


class ScaledLinear(nn.Module):
    """Stands in for a replaced projection (FP8, adapter): not an ``nn.Linear``."""

    def __init__(self, inner: nn.Linear) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.5 * self.inner(x)


def _replace_modules(model):
    from l3_core.model.feed_forward import FeedForward

    class ShiftedFeedForward(FeedForward):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 0.1 * x

    layer = model.layers[0]
    layer.attention.wq = ScaledLinear(layer.attention.wq)
    layer.feed_forward.w1 = ScaledLinear(layer.feed_forward.w1)
    model.layers[1].feed_forward.__class__ = ShiftedFeedForward
    return model


@pytest.mark.parametrize("replaced", [False, True], ids=["plain", "replaced-modules"])
def test_step_logits_equal_the_full_forward(replaced):
    model = tiny_model(seed=5)
    if replaced:
        model = _replace_modules(model)
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, model.args.vocab_size, (23,), generator=g).tolist()
    b = torch.randint(0, model.args.vocab_size, (9,), generator=g).tolist()
    cache = PagedKVCache(model.args, 16, 4, torch.float32, torch.device("cpu"))
    runner = ModelRunner(model, cache, model.args.vocab_size)
    ta, tb = list(range(0, 6)), list(range(6, 10))
    # Step 1: a's first chunk (no logits) and all of b; step 2: the rest of a and one b decode.
    first = runner.step([Chunk(a[:10], 0, ta, False), Chunk(b, 0, tb, True)])
    second = runner.step([Chunk(a[10:], 10, ta, True), Chunk([a[0]], 9, tb, True)])
    with torch.inference_mode():
        want = [model(torch.tensor([s]))[0, -1] for s in (b, a, [*b, a[0]])]
    got = [first[0], second[0], second[1]]
    for w, x in zip(want, got):
        torch.testing.assert_close(x, w, rtol=1e-4, atol=1e-4)
