"""Spoken digit strings and short phrases synthesised offline with espeak-ng.

Every utterance is one espeak-ng call with a voice, a speed and a pitch; the manifests list
the WAV files with their transcripts. Held-out digit strings never occur in the training set.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from l3_core.jsonl import write_jsonl
from l3_speech.errors import SpeechDependencyError, SpeechError

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PHRASES = [
    "hello world",
    "good morning",
    "thank you",
    "yes",
    "no",
    "stop",
    "go",
    "open the door",
    "call me later",
    "see you soon",
]


@dataclass(frozen=True)
class SynthSpec:
    n_train: int = 600
    n_test: int = 60
    min_digits: int = 3
    max_digits: int = 8
    phrase_fraction: float = 0.1
    train_voices: tuple[str, ...] = ("en-us", "en-gb", "en+f3", "en-gb-scotland")
    held_out_voice: str = "en+m3"
    speeds: tuple[int, int] = (140, 190)
    pitches: tuple[int, int] = (35, 65)
    seed: int = 0
    extra_phrases: tuple[str, ...] = field(default=())


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str, path: Path, speed: int = 160, pitch: int = 50) -> None:
    """Write ``text`` spoken by espeak-ng ``voice`` to the WAV file ``path`` (22,050 Hz)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechDependencyError("espeak-ng is not installed (apt-get install -y espeak-ng)")
    path.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0 or not path.is_file():
        raise SpeechError(f"espeak-ng failed for voice {voice!r}: {done.stderr.strip()}")


def _digit_string(rng: random.Random, spec: SynthSpec) -> str:
    return " ".join(
        rng.choice(DIGITS) for _ in range(rng.randint(spec.min_digits, spec.max_digits))
    )


def synthesize(out_dir: Path, spec: SynthSpec | None = None) -> dict[str, Path]:
    """Write WAVs and three manifests: ``train``, ``test_seen_voices`` (new digit strings, the
    training voices) and ``test_held_out_voice`` (new strings, a voice never trained on)."""
    spec = spec if spec is not None else SynthSpec()
    rng = random.Random(spec.seed)
    phrases = [*PHRASES, *spec.extra_phrases]
    train_texts: list[str] = []
    for _ in range(spec.n_train):
        text = (
            rng.choice(phrases) if rng.random() < spec.phrase_fraction else _digit_string(rng, spec)
        )
        train_texts.append(text)
    seen = set(train_texts)
    test_texts: list[str] = []
    while len(test_texts) < 2 * spec.n_test:
        text = _digit_string(rng, spec)
        if text not in seen:
            seen.add(text)
            test_texts.append(text)
    sets = {
        "train": [(t, rng.choice(spec.train_voices)) for t in train_texts],
        "test_seen_voices": [(t, rng.choice(spec.train_voices)) for t in test_texts[: spec.n_test]],
        "test_held_out_voice": [(t, spec.held_out_voice) for t in test_texts[spec.n_test :]],
    }
    manifests: dict[str, Path] = {}
    for name, items in sets.items():
        rows = []
        for i, (text, voice) in enumerate(items):
            wav = out_dir / "wav" / name / f"{i:05d}.wav"
            if not wav.is_file():
                speak(text, voice, wav, rng.randint(*spec.speeds), rng.randint(*spec.pitches))
            rows.append({"audio": str(wav.relative_to(out_dir)), "text": text, "voice": voice})
        manifests[name] = out_dir / f"{name}.jsonl"
        write_jsonl(manifests[name], rows)
    return manifests
