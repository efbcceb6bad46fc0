"""K samples of one prompt that share its prompt computation.

The prompt is prefilled once (batch 1); its keys and values are copied into the K rows'
caches, and the K rows then decode together. The tokens drawn are the ones
:func:`l3_core.model.generate` draws for the prompt repeated K times with the same seed,
without computing the prompt K times.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from l3_align.errors import AlignInputError
from l3_core.model import DecodeLayout, Transformer, sample_top_p


@torch.inference_mode()
def sample_shared_prefix(
    model: Transformer,
    prompt: Sequence[int],
    k: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    stop_tokens: Collection[int] = (),
    seed: int | None = None,
) -> list[list[int]]:
    """``k`` continuations of ``prompt`` (each ends at its first stop token, kept)."""
    p = len(prompt)
    total = p + max_new_tokens
    if p == 0 or k < 1 or max_new_tokens < 1:
        raise AlignInputError(
            f"sampling needs a prompt, k >= 1 and max_new_tokens >= 1 "
            f"(got {p} tokens, k={k}, max_new_tokens={max_new_tokens})"
        )
    if total > model.args.max_seq_len:
        raise AlignInputError(
            f"prompt ({p}) + max_new_tokens ({max_new_tokens}) exceeds max_seq_len "
            f"{model.args.max_seq_len}"
        )
    device = model.tok_embeddings.weight.device
    tokens = torch.tensor([list(prompt)], dtype=torch.long, device=device)
    model.check_tokens(tokens)
    prefix = model.kv_caches(1, p)
    positions = torch.arange(p, device=device)[None]
    h = model.tok_embeddings(tokens)
    logits = model.forward_hidden(h, positions, None, prefix, 0, last_only=True)[:, -1]
    caches = model.kv_caches(k, total)
    for shared, rows in zip(prefix, caches):
        rows.k[:, :, :p] = shared.k  # broadcast over the k rows
        rows.v[:, :, :p] = shared.v
    logits = logits.expand(k, -1)
    later = torch.arange(p, total, device=device)[None].expand(k, -1)
    decode = model.decoder(caches, DecodeLayout(p, total, later, None))
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    stop = torch.tensor(sorted(stop_tokens), dtype=torch.long, device=device)
    done = torch.zeros(k, dtype=torch.bool, device=device)
    out = torch.zeros(k, max_new_tokens, dtype=torch.long, device=device)
    n = 0
    for n in range(max_new_tokens):
        nxt = _choose(logits, temperature, top_p, gen)
        nxt = torch.where(done, torch.zeros_like(nxt), nxt)
        done |= torch.isin(nxt, stop)
        out[:, n] = nxt
        if n + 1 == max_new_tokens or bool(done.all()):
            break
        logits = decode(nxt, n)
    return [_cut_at_stop(row, stop_tokens) for row in out[:, : n + 1].tolist()]


def _choose(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator | None
) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(dim=-1)
    return sample_top_p(torch.softmax(logits.float() / temperature, dim=-1), top_p, gen)


def _cut_at_stop(row: list[int], stop_tokens: Collection[int]) -> list[int]:
    for j, t in enumerate(row):
        if t in stop_tokens:
            return row[: j + 1]
    return row
