"""Encoder + adapter in front of a frozen l3-core ``Transformer``.

Only the encoder and the adapter train; the language model is frozen (no gradients, always in
eval mode) and its outputs for text-only input are its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from l3_core.model import Transformer
from l3_speech.adapter.adapter import SpeechAdapter
from l3_speech.adapter.splice import splice_embeddings
from l3_speech.encoder.conformer import ConformerEncoder


class SpeechLM(nn.Module):
    def __init__(
        self,
        encoder: ConformerEncoder,
        adapter: SpeechAdapter,
        lm: Transformer,
        placeholder: int,
        pad_id: int,
    ) -> None:
        super().__init__()
        self.encoder, self.adapter = encoder, adapter
        # Held outside the module tree: its weights are not trained, not in this state dict,
        # and not moved to train mode.
        self.__dict__["lm"] = lm.eval().requires_grad_(False)
        self.placeholder, self.pad_id = placeholder, pad_id

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def audio_embeddings(self, features: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """One [frames_i, lm_dim] tensor per utterance (80 ms per frame with the default stride)."""
        encoded, enc_lengths = self.encoder(features, lengths)
        emb, out_lengths = self.adapter(encoded, enc_lengths)
        return [emb[i, : int(n)] for i, n in enumerate(out_lengths)]

    def logits(
        self, rows: Sequence[Sequence[int]], audio: Sequence[torch.Tensor | None]
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """Logits [b, s, vocab], the spliced token ids [b, s] and the row lengths."""
        h, ids, lengths = splice_embeddings(
            self.lm.tok_embeddings, rows, self.placeholder, audio, self.pad_id
        )
        positions = torch.arange(h.shape[1], device=h.device).expand(h.shape[0], -1)
        # Right padding under a causal mask never reaches a valid position: no mask needed.
        return self.lm.forward_hidden(h, positions, None), ids, lengths

    def loss(
        self,
        rows: Sequence[Sequence[int]],
        n_targets: Sequence[int],
        features: torch.Tensor,
        lengths: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Cross-entropy of the last ``n_targets[i]`` tokens of each row (the answer and its end
        of turn), given the prompt with the audio spliced in."""
        return self.answer_loss(rows, n_targets, self.audio_embeddings(features, lengths))

    def answer_loss(
        self, rows: Sequence[Sequence[int]], n_targets: Sequence[int], audio: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logits, ids, row_lengths = self.logits(rows, audio)
        labels = torch.full_like(ids, -100)
        for i, (n, length) in enumerate(zip(n_targets, row_lengths)):
            labels[i, length - n - 1 : length - 1] = ids[i, length - n : length]
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        picked = labels != -100
        accuracy = (logits.argmax(-1)[picked] == labels[picked]).float().mean()
        value = float(loss.detach())
        return loss, {"loss": value, "lm_loss": value, "token_accuracy": float(accuracy)}

    @torch.no_grad()
    def greedy(
        self,
        prompt: Sequence[int],
        features: torch.Tensor,
        lengths: torch.Tensor,
        stop: set[int],
        max_new_tokens: int = 48,
    ) -> list[list[int]]:
        """Greedy answers (without the stop token) for a batch of utterances sharing ``prompt``."""
        audio = self.audio_embeddings(features, lengths)
        outs: list[list[int]] = [[] for _ in audio]
        done = [False] * len(audio)
        for _ in range(max_new_tokens):
            rows = [[*prompt, *o] for o in outs]
            logits, _, row_lengths = self.logits(rows, audio)
            nxt = logits[torch.arange(len(rows)), torch.tensor(row_lengths) - 1].argmax(-1).tolist()
            for i, t in enumerate(nxt):
                if done[i]:
                    continue
                if t in stop:
                    done[i] = True
                else:
                    outs[i].append(t)
            if all(done):
                break
        return outs
