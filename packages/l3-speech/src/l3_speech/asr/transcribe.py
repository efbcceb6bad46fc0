"""Transcribe audio files with a speech checkpoint: lower-case words, one line per file."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from l3_speech.asr.checkpoint import load_speech_checkpoint
from l3_speech.asr.train import transcribe_features
from l3_speech.features.audio import read_audio
from l3_speech.features.fbank import utterance_features


def transcribe_files(checkpoint: Path, files: Sequence[Path], batch_size: int = 8) -> Iterator[str]:
    """Transcripts of ``files`` in input order; every file is read (and checked) first."""
    model, tok, meta = load_speech_checkpoint(checkpoint)
    feats = [utterance_features(read_audio(f)) for f in files]
    with torch.no_grad():
        yield from transcribe_features(
            model, tok, feats, meta.get("task", "asr"), meta.get("language", "English"), batch_size
        )
