"""Rejection-sampling settings (paper 4.2.2: K between 10 and 30 samples per prompt)."""

from __future__ import annotations

from dataclasses import dataclass, field

from l3_align.errors import AlignConfigError
from l3_core.run_config import AT_LEAST_1, NON_NEGATIVE, Range, check_ranges

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
        check_ranges(self.sample, SAMPLE_RANGES, AlignConfigError, prefix="sample")


SAMPLE_RANGES: dict[str, Range] = {
    "k": Range(1, MAX_K),
    "temperature": NON_NEGATIVE,
    "top_p": Range(0, 1, low_open=True),
    "max_new_tokens": AT_LEAST_1,
    "seed": Range(0, 2**32 - 1),
    "batch_size": AT_LEAST_1,
}
