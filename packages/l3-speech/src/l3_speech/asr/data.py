"""Utterances as features in memory, and seeded batches of them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from l3_core.jsonl import Exclusions
from l3_speech.features.audio import read_audio
from l3_speech.features.fbank import utterance_features
from l3_speech.features.manifest import read_manifest
from l3_speech.features.specaugment import SpecAugment


@dataclass
class FeatureSet:
    features: list[torch.Tensor]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def normalize_text(text: str) -> str:
    """Lower-case words without punctuation: what transcripts are compared on."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def load_features(manifest: Path, exclusions: Exclusions, max_seconds: float = 60.0) -> FeatureSet:
    utts = read_manifest(manifest, exclusions, max_seconds=max_seconds)
    return FeatureSet(
        [utterance_features(read_audio(u.audio)) for u in utts],
        [normalize_text(u.text) for u in utts],
    )


def pad_batch(features: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[0] for f in features])
    out = features[0].new_zeros(len(features), int(lengths.max()), features[0].shape[1])
    for i, f in enumerate(features):
        out[i, : f.shape[0]] = f
    return out, lengths


def sample_batch(
    data: FeatureSet, batch_size: int, gen: torch.Generator, augment: SpecAugment | None
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    idx = torch.randint(0, len(data), (batch_size,), generator=gen).tolist()
    feats = [data.features[i] for i in idx]
    if augment is not None:
        feats = [augment(f, gen) for f in feats]
    x, lengths = pad_batch(feats)
    return x, lengths, [data.texts[i] for i in idx]
