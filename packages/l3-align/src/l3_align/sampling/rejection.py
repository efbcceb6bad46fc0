"""Rejection sampling (paper 4.2.2): K samples per prompt, scored by the reward model, the best
kept as an SFT row with its score.

Prompt rows are ``{"messages": [prompt turns]}`` (the turns before the answer). Samples are
drawn with the steering system prompt of their index (when any), scored prompt-once against
the prompt without it (each sample as drawn: its ids and ``<|eot_id|>``), and the kept row is ``{"messages": [...prompt, {"role": "assistant",
"content": best}], "score": s, "scores": [all K]}``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from l3_align.data.encode import ChatEncoder
from l3_align.data.read import iter_raw_rows
from l3_align.data.rows import RowError, parse_messages
from l3_align.rm.model import RewardModel
from l3_align.rm.packing import Group, split_to_fit
from l3_align.sampling.config import SampleRunConfig
from l3_align.sampling.engines import SampleRequest, engine_named
from l3_core.jsonl import Exclusions
from l3_core.model import Transformer
from l3_core.tokenizer import Message

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptRow:
    source: str
    line: int
    messages: tuple[Message, ...]


@dataclass
class SamplingStats:
    engine: str
    prompts: int = 0
    samples: int = 0
    generate_s: float = 0.0
    score_s: float = 0.0

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.generate_s if self.generate_s else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "prompts": self.prompts,
            "samples": self.samples,
            "generate_s": self.generate_s,
            "score_s": self.score_s,
            "samples_per_s": self.samples_per_s,
        }


def parse_prompt_row(row: Mapping[str, Any], source: str, line: int) -> PromptRow:
    if "messages" not in row:
        raise RowError("missing field 'messages'")
    messages = parse_messages(row["messages"])
    if messages[-1].role == "assistant":
        raise RowError("field 'messages' ends with an assistant turn; a prompt ends before it")
    return PromptRow(source, line, messages)


def read_prompt_rows(path: str | os.PathLike[str], exclusions: Exclusions) -> list[PromptRow]:
    out = []
    for line, raw in iter_raw_rows(path, exclusions):
        try:
            out.append(parse_prompt_row(raw, str(path), line))
        except RowError as e:
            exclusions.reject(path, line, str(e))
    return out


def steered(messages: tuple[Message, ...], system: str | None) -> tuple[Message, ...]:
    """``messages`` with the steering system prompt first (after any system turn of theirs)."""
    if system is None:
        return messages
    return (Message("system", system), *messages)


def rejection_sample(
    policy: Transformer,
    rm: RewardModel,
    encoder: ChatEncoder,
    prompts: Sequence[PromptRow],
    cfg: SampleRunConfig,
    exclusions: Exclusions,
    stats: SamplingStats | None = None,
) -> Iterator[dict[str, Any]]:
    """The kept SFT row of each prompt, in order (prompts whose samples are all empty go to
    ``exclusions``)."""
    cfg.validate()
    s = cfg.sample
    name, engine = engine_named(s.engine)
    stats = stats if stats is not None else SamplingStats(name)
    tok = encoder.tokenizer
    systems = s.system_prompts or [None]
    for start in range(0, len(prompts), s.batch_size):
        batch = prompts[start : start + s.batch_size]
        requests, owners = [], []
        for j, row in enumerate(batch):
            for v, system in enumerate(systems):
                k = len(range(v, s.k, len(systems)))  # samples i with i % len == v
                if k == 0:
                    continue
                ids = encoder.prompt(steered(row.messages, system)).tokens.tolist()
                seed = s.seed * 1_000_003 + (start + j) * len(systems) + v
                requests.append(SampleRequest(ids, k, seed))
                owners.append(j)
        t0 = time.perf_counter()
        drawn = engine(policy, requests, s.max_new_tokens, s.temperature, s.top_p, tok.stop_tokens)
        stats.generate_s += time.perf_counter() - t0
        answers: list[list[list[int]]] = [[] for _ in batch]
        for j, samples in zip(owners, drawn):
            answers[j] += [[t for t in ids if t not in tok.stop_tokens] for ids in samples]
        stats.samples += sum(len(a) for a in answers)
        stats.prompts += len(batch)
        t0 = time.perf_counter()
        yield from _keep_best(rm, encoder, batch, answers, exclusions)
        stats.score_s += time.perf_counter() - t0


@torch.no_grad()
def _keep_best(
    rm: RewardModel,
    encoder: ChatEncoder,
    batch: Sequence[PromptRow],
    answers: list[list[list[int]]],
    exclusions: Exclusions,
) -> Iterator[dict[str, Any]]:
    """Score each prompt's samples as drawn (their ids and ``<|eot_id|>``) and keep the best."""
    tok = encoder.tokenizer
    kept, groups, parts = [], [], []
    max_len = rm.trunk.args.max_seq_len
    for row, samples in zip(batch, answers):
        usable = [ids for ids in samples if ids]
        if not usable:
            exclusions.reject(row.source, row.line, "every sample is empty")
            continue
        prompt = encoder.prompt(row.messages).tokens.tolist()
        whole = Group(prompt, [[*ids, tok.eot_id] for ids in usable])
        pieces = split_to_fit(whole, max_len)
        groups += pieces
        parts.append(len(pieces))
        kept.append((row, usable))
    if not groups:
        return
    flat = rm.score_groups(groups, tok.pad_id)
    at = 0
    for (row, usable), n in zip(kept, parts):
        sc = torch.cat(flat[at : at + n])
        at += n
        best = int(sc.argmax())
        yield {
            "messages": [
                *({"role": m.role, "content": m.content} for m in row.messages),
                {"role": "assistant", "content": tok.decode(usable[best])},
            ],
            "score": float(sc[best]),
            "scores": [float(x) for x in sc],
        }
