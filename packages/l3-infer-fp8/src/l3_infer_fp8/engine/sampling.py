"""Per-request sampling: parameters, a registry of logits processors, seeded generators.

Each processor is a pure function of one request's logits row, its parameters and the counts
of the tokens it has generated so far; the registry runs the ones a request turned on, in
order. Each request draws from its own ``torch.Generator``, so a seeded request samples the
same tokens whatever else shares its batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from l3_infer_fp8.errors import InvalidRequestError


@dataclass(frozen=True)
class SamplingParams:
    """``temperature`` 0 is greedy. ``top_k`` 0 and ``top_p`` 1 turn those filters off.
    ``logprobs``: None for none, else how many top alternatives to return with each token."""

    max_tokens: int = 16
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    stop_token_ids: tuple[int, ...] = ()
    stop: tuple[str, ...] = ()
    logprobs: int | None = None
    ignore_eos: bool = False
    extra: dict = field(default_factory=dict, compare=False)

    def validate(self) -> None:
        """Raise :class:`InvalidRequestError` naming the first field out of its range."""
        checks = (
            ("max_tokens", self.max_tokens >= 1, "an integer >= 1"),
            ("temperature", 0.0 <= self.temperature <= 100.0, "in [0, 100]"),
            ("top_p", 0.0 < self.top_p <= 1.0, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "an integer >= 0"),
            ("frequency_penalty", -2.0 <= self.frequency_penalty <= 2.0, "in [-2, 2]"),
            ("presence_penalty", -2.0 <= self.presence_penalty <= 2.0, "in [-2, 2]"),
            ("logprobs", self.logprobs is None or 0 <= self.logprobs <= 20, "in [0, 20]"),
            ("stop", all(isinstance(s, str) and s for s in self.stop), "non-empty strings"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise InvalidRequestError(
                    f"field '{name}' is {getattr(self, name)!r}: expected {expected}",
                    field=name,
                )


Processor = Callable[[torch.Tensor, SamplingParams, dict[int, int]], torch.Tensor]


def _penalties(logits: torch.Tensor, p: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    # OpenAI's definition: logit -= count * frequency_penalty + (count > 0) * presence_penalty.
    if not counts:
        return logits
    ids = torch.tensor(list(counts), dtype=torch.long, device=logits.device)
    n = torch.tensor(list(counts.values()), dtype=logits.dtype, device=logits.device)
    logits = logits.clone()
    logits[ids] -= n * p.frequency_penalty + p.presence_penalty
    return logits


def _temperature(logits: torch.Tensor, p: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    return logits / p.temperature


def _top_k(logits: torch.Tensor, p: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    if p.top_k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, p.top_k).values[-1]
    return logits.masked_fill(logits < kth, float("-inf"))


def _top_p(logits: torch.Tensor, p: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    # Keep the smallest set of most likely tokens whose probability reaches top_p.
    sorted_logits, order = torch.sort(logits, descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs
    drop = before >= p.top_p
    drop[0] = False
    return logits.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))


# name -> (is it on for these params, the processor). Greedy requests skip temperature and
# the filters (they cannot change the argmax) but keep the penalties.
PROCESSORS: dict[str, tuple[Callable[[SamplingParams], bool], Processor]] = {
    "penalties": (lambda p: p.frequency_penalty != 0 or p.presence_penalty != 0, _penalties),
    "temperature": (lambda p: p.temperature > 0 and p.temperature != 1.0, _temperature),
    "top_k": (lambda p: p.temperature > 0 and p.top_k > 0, _top_k),
    "top_p": (lambda p: p.temperature > 0 and p.top_p < 1.0, _top_p),
}


def process_logits(logits: torch.Tensor, p: SamplingParams, counts: dict[int, int]) -> torch.Tensor:
    """Run every processor ``p`` turns on over one float32 logits row [vocab]."""
    for enabled, fn in PROCESSORS.values():
        if enabled(p):
            logits = fn(logits, p, counts)
    return logits


def is_plain_greedy(p: SamplingParams) -> bool:
    """Whether ``p`` picks the raw logits' argmax (greedy, no processor turned on)."""
    return p.temperature == 0 and not any(enabled(p) for enabled, _ in PROCESSORS.values())


def make_generator(seed: int | None) -> torch.Generator:
    """The request's own generator: seeded when asked, else from fresh OS entropy."""
    g = torch.Generator()
    g.manual_seed(seed if seed is not None else random.SystemRandom().getrandbits(63))
    return g


def choose_token(logits: torch.Tensor, p: SamplingParams, generator: torch.Generator) -> int:
    """Greedy argmax or a draw from the processed distribution."""
    if p.temperature == 0:
        return int(torch.argmax(logits))
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))
