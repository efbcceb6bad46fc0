"""The ASR objective: the frozen LM's cross-entropy on the transcript, plus an optional CTC term.

The CTC term scores each audio embedding against the frozen LM's token embeddings (dot
products as logits, a filler token as the blank), which tells the adapter directly which
token embedding a stretch of speech should look like. It trains only the encoder and the
adapter; the LM's embeddings are read, never changed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from l3_speech.asr.model import SpeechLM


def ctc_embedding_loss(
    model: SpeechLM, audio: Sequence[torch.Tensor], targets: Sequence[Sequence[int]], blank: int
) -> torch.Tensor:
    """Mean CTC loss of ``targets`` (token ids) over the audio embeddings' token similarities."""
    table = model.lm.tok_embeddings.weight
    lengths = torch.tensor([a.shape[0] for a in audio])
    padded = torch.nn.utils.rnn.pad_sequence(list(audio))  # [t, b, dim]
    log_probs = F.log_softmax(padded @ table.t(), dim=-1)
    flat = torch.tensor([t for row in targets for t in row])
    return F.ctc_loss(
        log_probs,
        flat,
        lengths,
        torch.tensor([len(r) for r in targets]),
        blank=blank,
        zero_infinity=True,
    )


def asr_step(
    model: SpeechLM,
    rows: Sequence[Sequence[int]],
    n_targets: Sequence[int],
    features: torch.Tensor,
    lengths: torch.Tensor,
    ctc_targets: Sequence[Sequence[int]],
    blank: int,
    ctc_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    audio = model.audio_embeddings(features, lengths)
    loss, metrics = model.answer_loss(rows, n_targets, audio)
    if ctc_weight > 0:
        ctc = ctc_embedding_loss(model, audio, ctc_targets, blank)
        metrics["ctc_loss"] = float(ctc.detach())
        loss = loss + ctc_weight * ctc
    metrics["loss"] = float(loss.detach())
    return loss, metrics
