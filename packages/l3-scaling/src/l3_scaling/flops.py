"""FLOP accounting for Llama 3 shapes, delegated to l3-core's :class:`ModelArgs`.

There is one formula in the project (``ModelArgs.flops_per_token``: 6N plus the attention
score and value matmuls); this module only turns it into per-run budgets and token counts.
"""

from __future__ import annotations

from l3_core import ModelArgs


def scaling_params(args: ModelArgs) -> int:
    """N as scaling laws count it: every parameter except the input embedding (a lookup).

    A tied output head is counted, since it is a matmul per token.
    """
    n = args.num_params(include_embedding=False)
    return n + args.vocab_size * args.dim if args.tie_embeddings else n


def run_flops(args: ModelArgs, seq_len: int, tokens: float) -> float:
    """Training FLOPs of a run of ``tokens`` tokens at sequence length ``seq_len``."""
    return args.flops_per_token(seq_len) * tokens


def tokens_for_budget(args: ModelArgs, seq_len: int, flops: float) -> float:
    """Training tokens that spend ``flops`` on this shape."""
    return flops / args.flops_per_token(seq_len)
