"""Verbatim memorisation of training data (paper section 5.4.2, Table 24).

Documents are sampled from the training shards (seeded, uniformly, so each source is weighted
by its share of the documents). From each, a window at a seeded random offset gives a prompt of
``n`` tokens and the ``m`` tokens that follow it in the document (the ground truth). The model
greedy-decodes ``m`` tokens after the prompt; the sample is memorised when they equal the
ground truth exactly. The paper's verbatim memorisation is this inclusion rate: the share of
generations that contain the ground truth continuation exactly (a greedy generation of exactly
``m`` tokens contains it only by being equal to it). Documents shorter than ``n + m`` tokens
cannot be prompted so and are skipped, counted per source.

Greedy decoding reproduces the ground truth exactly if and only if, with the ground truth fed
in (teacher forcing), the argmax at every one of the ``m`` positions is the next ground-truth
token: until the first miss the greedy decode has the same prefix as the teacher-forced input.
So one forward pass per batch decides it, and the first miss is where greedy decoding would
have left the document (``matched``: the length of the reproduced prefix).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from l3_core.errors import ShardError
from l3_core.shards import ShardDataset
from l3_data.errors import InputFormatError, OptionError

if TYPE_CHECKING:
    import torch

    from l3_core.model import Transformer

log = logging.getLogger(__name__)

#: the paper's scenarios: 50- and 1000-token prompts (Table 24)
DEFAULT_PROMPT_LENGTHS = (50, 1000)
DEFAULT_TARGET_LENGTH = 50
DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class Window:
    """``tokens`` = the prompt followed by the ground truth, from document ``doc`` of
    ``source`` at token ``start``."""

    source: str
    doc: int
    start: int
    tokens: np.ndarray


def open_shards(path: str | Path, vocab_size: int | None = None) -> ShardDataset:
    try:
        return ShardDataset(path, expect_vocab_size=vocab_size)
    except ShardError as e:
        raise InputFormatError(str(e)) from None


def sample_windows(
    dataset: ShardDataset, samples: int, prompt_length: int, target_length: int, seed: int
) -> tuple[list[Window], dict[str, int]]:
    """Windows of ``prompt_length + target_length`` tokens from up to ``samples`` documents
    drawn without replacement (seeded), and the drawn documents too short, per source."""
    rng = np.random.default_rng(seed)
    where = dataset.document_index()
    drawn = rng.permutation(len(where))[:samples]
    span = prompt_length + target_length
    windows: list[Window] = []
    skipped: dict[str, int] = {}
    for d in drawn:
        shard = dataset.shards[int(where[d, 0])]
        local = int(where[d, 1])
        source = shard.source_of(local)
        ids = shard.document(local)
        if ids.size < span:
            skipped[source] = skipped.get(source, 0) + 1
            continue
        start = int(rng.integers(0, ids.size - span + 1))
        windows.append(Window(source, int(d), start, np.asarray(ids[start : start + span])))
    return windows, skipped


def greedy_matches(model: Transformer, tokens: torch.Tensor, prompt_length: int) -> torch.Tensor:
    """bool [b, m]: whether the greedy choice after the prompt and the first j ground-truth
    tokens is ground-truth token j (``tokens`` [b, prompt_length + m])."""
    import torch

    with torch.inference_mode():
        logits = model(tokens[:, :-1])
        predicted = logits[:, prompt_length - 1 :, :].argmax(dim=-1)
    return predicted == tokens[:, prompt_length:]


def matched_prefix(matches: torch.Tensor) -> torch.Tensor:
    """[b]: the number of leading ground-truth tokens greedy decoding reproduces."""
    return matches.int().cumprod(dim=1).sum(dim=1)


def _check_lengths(model: Transformer, prompt_lengths: Sequence[int], target_length: int) -> None:
    if target_length < 1 or any(n < 1 for n in prompt_lengths):
        raise OptionError(
            f"--prompt-lengths {list(prompt_lengths)} --target-length {target_length}: "
            "expected positive lengths"
        )
    longest = max(prompt_lengths) + target_length - 1
    if longest > model.args.max_seq_len:
        raise OptionError(
            f"--prompt-lengths {max(prompt_lengths)} + --target-length {target_length}: the "
            f"model's max_seq_len is {model.args.max_seq_len}"
        )


def _rate(exact: int, evaluated: int) -> float | None:
    return exact / evaluated if evaluated else None


def measure_memorisation(
    model: Transformer,
    dataset: ShardDataset,
    *,
    prompt_lengths: Sequence[int] = DEFAULT_PROMPT_LENGTHS,
    target_length: int = DEFAULT_TARGET_LENGTH,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Exact-reproduction rate per prompt length, overall and per source."""
    import torch

    _check_lengths(model, prompt_lengths, target_length)
    if samples < 1 or batch_size < 1:
        raise OptionError(f"--samples {samples} --batch-size {batch_size}: expected >= 1")
    device = model.tok_embeddings.weight.device
    scenarios = []
    for n in prompt_lengths:
        windows, skipped = sample_windows(dataset, samples, n, target_length, seed)
        exact = np.zeros(len(windows), bool)
        matched = np.zeros(len(windows), np.int64)
        for lo in range(0, len(windows), batch_size):
            batch = windows[lo : lo + batch_size]
            tokens = torch.as_tensor(
                np.stack([w.tokens.astype(np.int64) for w in batch]), device=device
            )
            hits = greedy_matches(model, tokens, n)
            exact[lo : lo + len(batch)] = hits.all(dim=1).cpu().numpy()
            matched[lo : lo + len(batch)] = matched_prefix(hits).cpu().numpy()
        per_source: dict[str, dict[str, Any]] = {}
        for source in sorted({w.source for w in windows} | set(skipped)):
            mine = np.array([w.source == source for w in windows], bool)
            evaluated, hit = int(mine.sum()), int(exact[mine].sum())
            per_source[source] = {
                "evaluated": evaluated,
                "skipped_short": skipped.get(source, 0),
                "exact": hit,
                "rate": _rate(hit, evaluated),
            }
        scenarios.append(
            {
                "prompt_length": n,
                "target_length": target_length,
                "evaluated": len(windows),
                "skipped_short": sum(skipped.values()),
                "exact": int(exact.sum()),
                "rate": _rate(int(exact.sum()), len(windows)),
                "mean_matched_prefix": float(matched.mean()) if matched.size else None,
                "per_source": per_source,
            }
        )
        log.info("prompt %d: %d of %d windows reproduced", n, int(exact.sum()), len(windows))
    return {
        "shards": str(dataset.directory),
        "documents": dataset.n_docs,
        "samples": samples,
        "seed": seed,
        "definition": (
            "share of sampled windows whose greedy continuation of target_length tokens after "
            "a prompt of prompt_length tokens equals the document's next target_length tokens"
        ),
        "scenarios": scenarios,
    }
