from __future__ import annotations

import pytest

from l3_core import ModelArgs
from l3_scaling.flops import run_flops, scaling_params, tokens_for_budget


def test_flops_are_l3_core_flops_per_token_times_tokens():
    args = ModelArgs.from_preset("llama3-20m")
    assert run_flops(args, 512, 1e6) == args.flops_per_token(512) * 1e6
    assert tokens_for_budget(args, 512, run_flops(args, 512, 3e7)) == pytest.approx(3e7)


def test_scaling_params_is_the_6N_term_of_l3_core_flops():
    # flops_per_token = 6N + 6 * 2 * 2 * layers * seq * heads * head_dim (training, fwd x 3)
    for name in ("llama3-tiny", "llama3.2-1b"):
        args = ModelArgs.from_preset(name)
        attn = 3 * 2 * 2 * args.n_layers * 256 * args.n_heads * args.head_dim
        assert 6 * scaling_params(args) + attn == args.flops_per_token(256)


def test_tied_head_counts_the_shared_matrix_once_and_untied_drops_the_input_embedding():
    tied = ModelArgs.from_preset("llama3.2-1b")
    assert scaling_params(tied) == tied.num_params()
    untied = ModelArgs.from_preset("llama3-tiny")
    assert scaling_params(untied) == untied.num_params() - untied.vocab_size * untied.dim
