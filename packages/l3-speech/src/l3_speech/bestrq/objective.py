"""The BEST-RQ objective: a batch of features, masked, encoded, scored against quantiser targets.

Masks are drawn on the 10 ms input frames (spans of ``span`` frames, started with probability
``mask_prob``) and the masked frames replaced by N(0, 0.1) noise, as in BEST-RQ. An encoder
frame (4 stacked input frames) is a prediction target when any of its input frames is
masked; its targets come from the clean, unmasked features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from l3_speech.bestrq.masking import span_mask
from l3_speech.bestrq.quantizer import BestRQQuantizer
from l3_speech.encoder.conformer import ConformerEncoder, padding_mask

NOISE_STD = 0.1


@dataclass(frozen=True)
class BestRQArgs:
    code_dim: int = 16
    n_codes: int = 8192
    n_codebooks: int = 16
    mask_prob: float = 0.025
    mask_span: int = 32
    # Utterances longer than 60 s are cropped to this many 10 ms frames.
    max_frames: int = 6000
    quantizer_seed: int = 0


class BestRQObjective(nn.Module):
    """Encoder + frozen quantiser + one softmax head per codebook."""

    def __init__(self, encoder: ConformerEncoder, args: BestRQArgs | None = None) -> None:
        super().__init__()
        self.encoder, self.args = encoder, args if args is not None else BestRQArgs()
        args = self.args
        e = encoder.args
        self.quantizer = BestRQQuantizer(
            e.stack * e.n_mels, args.code_dim, args.n_codes, args.n_codebooks, args.quantizer_seed
        )
        self.head = nn.Linear(e.dim, args.n_codebooks * args.n_codes)

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Mean cross-entropy over masked frames and codebooks, and metrics."""
        features, lengths = crop(features, lengths, self.args.max_frames)
        stack = self.encoder.args.stack
        stacked, enc_lengths = self.encoder.stacked(features, lengths)
        targets = self.quantizer(stacked)
        mask = span_mask(
            lengths, features.shape[1], self.args.mask_prob, self.args.mask_span, generator
        )
        noise = torch.randn(features.shape, generator=generator) * NOISE_STD
        noisy = torch.where(mask[..., None], noise.to(features), features)
        encoded, _ = self.encoder(noisy, lengths)
        frame_mask = masked_frames(mask, stack) & ~padding_mask(enc_lengths, encoded.shape[1])
        logits = self.head(encoded[frame_mask]).view(-1, self.args.n_codebooks, self.args.n_codes)
        chosen = targets[frame_mask]
        loss = F.cross_entropy(logits.flatten(0, 1), chosen.flatten())
        accuracy = (logits.argmax(-1) == chosen).float().mean()
        return loss, {
            "loss": float(loss.detach()),
            "accuracy": float(accuracy),
            "masked_fraction": float(frame_mask.sum() / enc_lengths.sum()),
        }


def masked_frames(mask: torch.Tensor, stack: int) -> torch.Tensor:
    """[b, t] input-frame mask -> [b, ceil(t / stack)]: True where any stacked frame is masked."""
    pad = (-mask.shape[1]) % stack
    return F.pad(mask, (0, pad)).view(mask.shape[0], -1, stack).any(dim=-1)


def crop(
    features: torch.Tensor, lengths: torch.Tensor, max_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the first ``max_frames`` frames of every utterance."""
    if features.shape[1] <= max_frames:
        return features, lengths
    return features[:, :max_frames], lengths.clamp(max=max_frames)
