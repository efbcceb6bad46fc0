"""KV-cache decoding: greedy, temperature and top-p sampling over a batch of prompts.

Prompts of different lengths are left-padded; padding is masked out and each row's RoPE
positions start at its first real token, so a row decodes exactly as it would alone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch

from l3_core.errors import InputError
from l3_core.model.decoding import DecodeLayout
from l3_core.model.transformer import Transformer


def sample_top_p(
    probs: torch.Tensor, top_p: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Sample from the smallest set of tokens whose probability mass reaches ``top_p``."""
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    sorted_probs[(cumulative - sorted_probs) > top_p] = 0.0
    sorted_probs /= sorted_probs.sum(dim=-1, keepdim=True)
    choice = torch.multinomial(sorted_probs, 1, generator=generator)
    return order.gather(-1, choice).squeeze(-1)


@torch.inference_mode()
def generate(
    model: Transformer,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    stop_tokens: Collection[int] = (),
    seed: int | None = None,
) -> list[list[int]]:
    """New tokens for each prompt (without the prompt), stopping at any of ``stop_tokens``.

    ``temperature == 0`` is greedy decoding. After the prompts' prefill each token runs
    ``model.decoder``'s step: through the modules, or the CPU kernels' lean step where
    :func:`l3_core.kernels.apply` turned them on.
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise InputError("generate needs at least one non-empty prompt")
    if max_new_tokens < 0 or temperature < 0 or not 0 < top_p <= 1:
        raise InputError(
            f"invalid sampling settings: max_new_tokens={max_new_tokens}, "
            f"temperature={temperature}, top_p={top_p}"
        )
    device = model.tok_embeddings.weight.device
    b = len(prompts)
    longest = max(len(p) for p in prompts)
    total = longest + max_new_tokens
    if total > model.args.max_seq_len:
        raise InputError(
            f"prompt ({longest}) + max_new_tokens ({max_new_tokens}) exceeds "
            f"max_seq_len {model.args.max_seq_len}"
        )
    pad = torch.tensor([longest - len(p) for p in prompts], device=device)
    tokens = torch.zeros(b, longest, dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        tokens[i, longest - len(p) :] = torch.tensor(list(p), dtype=torch.long)
    model.check_tokens(tokens)

    caches = model.kv_caches(b, total)
    gen = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    stop = torch.tensor(sorted(stop_tokens), dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    out = torch.zeros(b, max_new_tokens, dtype=torch.long, device=device)
    key_pos = torch.arange(total, device=device)
    # Left padding: row i's keys before pad[i] are never attended to.
    real_keys = key_pos[None, :] >= pad[:, None] if bool(pad.any()) else None
    mask = None  # causal prefill
    if real_keys is not None:
        causal = key_pos[None, :longest] <= key_pos[:longest, None]
        mask = (causal[None] & real_keys[:, None, :longest]).unsqueeze(1)
    positions = (key_pos[None, :longest] - pad[:, None]).clamp(min=0)
    h = model.tok_embeddings(tokens)
    logits = model.forward_hidden(h, positions, mask, caches, 0, last_only=True)[:, -1]

    # Every later step writes cache slot longest + n at position longest + n - pad.
    layout = DecodeLayout(longest, total, key_pos[None, longest:] - pad[:, None], real_keys)
    decode = model.decoder(caches, layout)
    n = 0
    for n in range(max_new_tokens):
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            nxt = sample_top_p(probs, top_p, gen)
        else:
            nxt = logits.argmax(dim=-1)
        if stop_tokens:
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)
            done |= torch.isin(nxt, stop)
        out[:, n] = nxt
        if n + 1 == max_new_tokens or (stop_tokens and bool(done.all())):
            break
        logits = decode(nxt, n)
    results = []
    for row in out[:, : n + 1].tolist():
        for j, t in enumerate(row):
            if t in stop_tokens:
                row = row[: j + 1]
                break
        results.append(row)
    return results
