"""A synthetic preference task a program can check: sort a short list of digits.

The prompt asks ``sort: 7 2 9 4``; the preferred response is the digits in ascending order
(``2 4 7 9``), the rejected one the same digits in another order. :func:`is_sorted_answer`
checks a generation. Used by the proof test, the ``align`` stage of the main job and the
benchmark: a tiny model first imitates both kinds of answer (:func:`imitation_rows`), and DPO
must then move it towards the sorted ones.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from l3_core.tokenizer import Tokenizer

PREFIX = "sort: "


def _digits(rng: random.Random, low: int, high: int) -> list[int]:
    return [rng.randrange(10) for _ in range(rng.randint(low, high))]


def _unsorted(rng: random.Random, digits: list[int]) -> list[int]:
    if len(set(digits)) < 2:
        return digits
    while True:
        out = digits[:]
        rng.shuffle(out)
        if out != sorted(digits):
            return out


def _text(digits: list[int]) -> str:
    return " ".join(map(str, digits))


def prompt_messages(digits: list[int]) -> list[dict[str, str]]:
    return [{"role": "user", "content": PREFIX + _text(digits)}]


def preference_rows(n: int, seed: int = 0, low: int = 3, high: int = 5) -> list[dict[str, Any]]:
    """``n`` preference rows: sorted (chosen) against unsorted (rejected)."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        digits = _digits(rng, low, high)
        if len(set(digits)) < 2:
            continue
        rows.append(
            {
                "messages": prompt_messages(digits),
                "chosen": _text(sorted(digits)),
                "rejected": _text(_unsorted(rng, digits)),
            }
        )
    return rows


def imitation_rows(n: int, seed: int = 0, sorted_share: float = 0.5) -> list[dict[str, Any]]:
    """SFT rows whose answers are sorted with probability ``sorted_share``: a model trained on
    them writes the right digits but orders them only sometimes."""
    rng = random.Random(seed)
    rows = []
    for r in preference_rows(n, seed + 1):
        answer = r["chosen"] if rng.random() < sorted_share else r["rejected"]
        rows.append({"messages": [*r["messages"], {"role": "assistant", "content": answer}]})
    return rows


def is_sorted_answer(prompt: str, response: str) -> bool:
    """Whether ``response`` is exactly the digits of ``prompt`` in ascending order."""
    digits = [int(t) for t in prompt.removeprefix(PREFIX).split()]
    return response.strip() == _text(sorted(digits))


def task_corpus(n: int = 400) -> str:
    """Text for training a small tokenizer that covers the task."""
    lines = []
    for r in preference_rows(n, seed=12345):
        lines += [r["messages"][0]["content"], r["chosen"], r["rejected"]]
    lines += ["system user assistant ipython", "The answer is a sorted list of digits."]
    return "\n".join(lines)


def train_task_tokenizer(path: str | Path, vocab_size: int = 320) -> Tokenizer:
    """A small sentencepiece BPE over :func:`task_corpus` (``vocab_size + 256`` ids)."""
    from l3_core.tokenizer import train_sentencepiece

    return train_sentencepiece([task_corpus()], path, vocab_size=vocab_size)
