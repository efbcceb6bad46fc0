"""A request's state in the engine and what each step reports about it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import torch

from l3_infer_fp8.engine.sampling import SamplingParams
from l3_infer_fp8.engine.text import IncrementalText


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass
class TokenLogprob:
    token_id: int
    logprob: float
    top: dict[int, float]  # the request's ``logprobs`` most likely ids -> logprob


@dataclass
class RequestOutput:
    """What one step produced for one request: the new tokens, their text and log-probs."""

    request_id: str
    new_token_ids: list[int]
    new_text: str
    new_logprobs: list[TokenLogprob]
    finished: bool
    finish_reason: str | None  # "stop", "length", "abort", "tool_calls" (set by callers)
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Request:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    generator: torch.Generator
    text: IncrementalText | None
    arrival: int  # order of arrival; the scheduler preempts the latest first
    output_ids: list[int] = field(default_factory=list)
    logprobs: list[TokenLogprob] = field(default_factory=list)
    counts: dict[int, int] = field(default_factory=dict)
    block_table: list[int] = field(default_factory=list)
    num_computed: int = 0  # tokens whose keys and values are in the cache
    num_hashed_blocks: int = 0  # leading full blocks registered in the prefix table
    last_hash: int | None = None
    status: Status = Status.WAITING
    finish_reason: str | None = None
    preemptions: int = 0

    @property
    def all_ids(self) -> list[int]:
        return self.prompt_ids + self.output_ids

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_ids) + len(self.output_ids)
