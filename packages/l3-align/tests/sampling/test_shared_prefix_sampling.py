"""Sampling K continuations from one prefilled prompt draws what l3-core's generate draws for
the prompt repeated K times (same seed), greedy and sampled."""

from __future__ import annotations

import pytest

from l3_align.errors import AlignInputError
from l3_align.sampling.prefix_cache import sample_shared_prefix
from l3_core.args import ModelArgs
from l3_core.model import Transformer, generate


@pytest.fixture(scope="module")
def model() -> Transformer:
    args = ModelArgs(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=40, max_seq_len=64)
    return Transformer.build(args, seed=3).eval()


@pytest.mark.parametrize("temperature,top_p", [(0.0, 1.0), (1.0, 1.0), (0.8, 0.9)])
def test_shared_prefix_samples_equal_generate_on_repeated_prompts(model, temperature, top_p):
    prompt, k = [5, 9, 2, 33, 7], 6
    stop = {3, 4}
    ours = sample_shared_prefix(model, prompt, k, 12, temperature, top_p, stop, seed=11)
    ref = generate(model, [prompt] * k, 12, temperature, top_p, stop, seed=11)
    assert ours == ref
    if temperature > 0:
        assert len({tuple(r) for r in ours}) > 1  # the rows really differ


def test_too_long_is_an_input_error(model) -> None:
    with pytest.raises(AlignInputError, match="exceeds max_seq_len 64"):
        sample_shared_prefix(model, list(range(1, 30)), 2, 40)
