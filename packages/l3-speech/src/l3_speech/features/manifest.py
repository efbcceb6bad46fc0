"""Speech manifests: JSONL rows ``{"audio": path, "text": transcript}``.

Audio paths are relative to the manifest's directory unless absolute. A row that cannot be
used (bad JSON, a missing field, audio that is unreadable, empty, too long or at a refused
sample rate) goes to the :class:`~l3_core.jsonl.Exclusions` with the file and the reason; the
run goes on with the rest.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from l3_core.jsonl import Exclusions, iter_jsonl
from l3_speech.errors import AudioInputError
from l3_speech.features.audio import COMMON_RATES, audio_info


@dataclass(frozen=True)
class Utterance:
    """One usable manifest row."""

    audio: Path
    text: str
    line: int


def read_manifest(
    path: str | os.PathLike[str],
    exclusions: Exclusions,
    max_seconds: float = 60.0,
    sample_rates: Collection[int] = COMMON_RATES,
) -> list[Utterance]:
    """The usable rows of ``path``; every other row is added to ``exclusions`` with its reason."""
    path = Path(path)
    out: list[Utterance] = []
    for line, row in iter_jsonl(path, on_bad_row=exclusions.add):
        reason, utt = _check_row(path, line, row, max_seconds, sample_rates)
        if reason is not None:
            exclusions.reject(path, line, reason)
        else:
            out.append(utt)
    return out


def _check_row(
    path: Path, line: int, row: dict, max_seconds: float, sample_rates: Collection[int]
) -> tuple[str | None, Utterance | None]:
    for key in ("audio", "text"):
        if not isinstance(row.get(key), str):
            return f"field {key!r} missing or not a string: {row.get(key)!r}", None
    text = " ".join(row["text"].split())
    if not text:
        return "field 'text' is empty", None
    audio = Path(row["audio"])
    if not audio.is_absolute():
        audio = path.parent / audio
    try:
        info = audio_info(audio)
    except AudioInputError as e:
        return f"unreadable audio: {e}", None
    if info.frames == 0:
        return f"empty audio: {audio}", None
    if info.sample_rate not in sample_rates:
        return (
            f"wrong sample rate: {audio} is {info.sample_rate} Hz, allowed {sorted(sample_rates)}",
            None,
        )
    if info.seconds > max_seconds:
        return f"too long: {audio} is {info.seconds:.1f} s, limit {max_seconds:g} s", None
    return None, Utterance(audio, text, line)
