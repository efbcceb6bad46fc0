"""Rejection-sampling settings (paper 4.2.2: K between 10 and 30 samples per prompt)."""

from __future__ import annotations

from dataclasses import dataclass, field

from l3_align.errors import AlignConfigError

MAX_K = 30


@dataclass
class SampleSection:
    k: int = 10
    temperature: float = 1.0
    top_p: float = 0.9
    max_new_tokens: int = 64
    # Steering system prompts (tone, format): sample i of a prompt gets number i % len; the
    # kept row holds the prompt without it.
    system_prompts: list[str] = field(default_factory=list)
    engine: str = "auto"  # a name in l3_align.sampling.engines.ENGINES, or auto
    seed: int = 0
    batch_size: int = 16  # groups per reward-model forward


@dataclass
class SampleRunConfig:
    sample: SampleSection = field(default_factory=SampleSection)

    def validate(self) -> None:
        s = self.sample
        for key, value, ok in (
            ("sample.k", s.k, 1 <= s.k <= MAX_K),
            ("sample.temperature", s.temperature, s.temperature >= 0),
            ("sample.top_p", s.top_p, 0 < s.top_p <= 1),
            ("sample.max_new_tokens", s.max_new_tokens, s.max_new_tokens >= 1),
            ("sample.batch_size", s.batch_size, s.batch_size >= 1),
        ):
            if not ok:
                raise AlignConfigError(f"{key} = {value!r} is out of range")
