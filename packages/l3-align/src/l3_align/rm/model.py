"""The reward model: an l3-core Transformer trunk and a scalar head on a response's last token."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from l3_align.rm.packing import Group, PackedGroups, pack_groups
from l3_core.model import Transformer


class RewardModel(nn.Module):
    """``trunk`` (its LM head is dropped) and ``score``, a bias-free linear map to one number,
    read from the final-norm hidden state (as transformers' ``LlamaForSequenceClassification``)."""

    def __init__(self, trunk: Transformer, score: nn.Linear | None = None) -> None:
        super().__init__()
        trunk.output = None  # the LM head is never used: scores come from ``score``
        self.trunk = trunk
        self.score = score if score is not None else nn.Linear(trunk.args.dim, 1, bias=False)
        self.score.to(device=trunk.tok_embeddings.weight.device, dtype=self.dtype)

    @property
    def dtype(self) -> torch.dtype:
        return self.trunk.tok_embeddings.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.trunk.tok_embeddings.weight.device

    @torch.no_grad()
    def init_score(self, generator: torch.Generator | None = None) -> None:
        nn.init.normal_(self.score.weight, std=self.trunk.args.dim**-0.5, generator=generator)

    def forward(self, packed: PackedGroups) -> torch.Tensor:
        """Scores [n] of every response in ``packed``, in ``packed.last_index`` order."""
        t = self.trunk
        h = t.embed(packed.tokens)
        h = t.norm(t.blocks(h, packed.positions, packed.mask))
        return self.score(h.flatten(0, 1)[packed.last_index]).squeeze(-1)

    def score_groups(
        self, groups: Sequence[Group], pad_id: int = 0, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """Per group, the scores [len(responses)] of its responses (prompt computed once)."""
        packed = pack_groups(groups, pad_id, generator, self.device)
        return list(self(packed).split(list(packed.group_sizes)))

    def score_sequences(self, sequences: Sequence[Sequence[int]]) -> torch.Tensor:
        """Scores [n] of whole sequences, each run alone (the unpacked reference)."""
        out = []
        for seq in sequences:
            tokens = torch.tensor([list(seq)], dtype=torch.long, device=self.device)
            h = self.trunk.embed(tokens)
            positions = torch.arange(tokens.shape[1], device=self.device)[None]
            h = self.trunk.norm(self.trunk.blocks(h, positions, None))
            out.append(self.score(h[0, -1]).squeeze(-1))
        return torch.stack(out)
