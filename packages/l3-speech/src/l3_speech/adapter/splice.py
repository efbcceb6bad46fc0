"""Token embeddings with audio embeddings spliced in at a placeholder.

This is the one seam l3-speech needs from l3-core's ``Transformer`` beyond its public API: a
prompt's token ids are embedded with ``tok_embeddings``, the single placeholder id is replaced
by the adapter's outputs, and the result runs through ``forward_hidden``. The language model is
not changed; a row without a placeholder gives exactly the model's own logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from l3_speech.errors import AudioInputError


def splice_embeddings(
    embed: nn.Embedding,
    rows: Sequence[Sequence[int]],
    placeholder: int,
    audio: Sequence[torch.Tensor | None],
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Right-padded embeddings [b, s, dim], the token id at each position ([b, s]; -1 where audio
    sits, ``pad_id`` in the padding), and each row's length.

    Row ``i`` holds at most one ``placeholder``, replaced by ``audio[i]`` [frames, dim].
    """
    device = embed.weight.device
    pieces: list[torch.Tensor] = []
    ids: list[list[int]] = []
    for i, (row, emb) in enumerate(zip(rows, audio, strict=True)):
        n = sum(t == placeholder for t in row)
        if n > 1 or (n == 1) != (emb is not None):
            raise AudioInputError(
                f"row {i}: {n} audio placeholders for {'one' if emb is not None else 'no'} audio input"
            )
        tokens = torch.tensor(list(row), device=device, dtype=torch.long)
        if emb is None:
            pieces.append(embed(tokens))
            ids.append(list(row))
            continue
        at = list(row).index(placeholder)
        pieces.append(
            torch.cat([embed(tokens[:at]), emb.to(embed.weight.dtype), embed(tokens[at + 1 :])])
        )
        ids.append([*row[:at], *([-1] * emb.shape[0]), *row[at + 1 :]])
    lengths = [p.shape[0] for p in pieces]
    longest = max(lengths)
    h = embed.weight.new_zeros(len(pieces), longest, embed.weight.shape[1])
    positions = torch.full((len(pieces), longest), pad_id, dtype=torch.long, device=device)
    for i, (p, row_ids) in enumerate(zip(pieces, ids)):
        h[i, : p.shape[0]] = p
        positions[i, : p.shape[0]] = torch.tensor(row_ids, device=device)
    return h, positions, lengths
