"""A synthetic preference task whose preferred property a program checks: sorted lists.

The prompt asks to sort a few digits; a response has the property when it lists the prompt's
digits in ascending order. Tests, benchmarks and the main job's align stage build tiny models
and rows from it.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from l3_core.args import ModelArgs
from l3_core.checkpoint import save_checkpoint
from l3_core.model import Transformer
from l3_core.tokenizer import Tokenizer, train_sentencepiece

PREFIX = "sort "


def prompt_digits(rng: random.Random, length: int) -> list[int]:
    return [rng.randrange(10) for _ in range(length)]


def prompt_text(digits: list[int]) -> str:
    return PREFIX + " ".join(map(str, digits))


def answer_text(digits: list[int]) -> str:
    return " ".join(map(str, digits))


def has_property(prompt: str, response: str) -> bool:
    """Whether ``response`` lists the digits of ``prompt`` ("sort 3 1 2") in ascending order."""
    digits = prompt.removeprefix(PREFIX).split()
    return response.split() == sorted(digits)


def unsorted_permutation(rng: random.Random, digits: list[int]) -> list[int]:
    """A permutation of ``digits`` that is not ascending (``digits`` must not be constant)."""
    while True:
        out = digits[:]
        rng.shuffle(out)
        if out != sorted(digits):
            return out


def preference_rows(n: int, seed: int, length: int = 4) -> list[dict]:
    """``n`` rows {messages, chosen (sorted), rejected (an unsorted permutation)}."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        digits = prompt_digits(rng, length)
        if len(set(digits)) < 2:
            continue
        rows.append(
            {
                "messages": [{"role": "user", "content": prompt_text(digits)}],
                "chosen": answer_text(sorted(digits)),
                "rejected": answer_text(unsorted_permutation(rng, digits)),
            }
        )
    return rows


def prompt_rows(n: int, seed: int, length: int = 4) -> list[dict]:
    """``n`` prompt rows {messages} for rejection sampling."""
    rng = random.Random(seed)
    return [
        {"messages": [{"role": "user", "content": prompt_text(prompt_digits(rng, length))}]}
        for _ in range(n)
    ]


def train_tokenizer(path: str | os.PathLike[str], seed: int = 0) -> Tokenizer:
    """A small BPE (300 pieces + the Llama 3 specials) over the task's text."""
    rng = random.Random(seed)
    lines = [
        f"{prompt_text(prompt_digits(rng, 4))}\n{answer_text(prompt_digits(rng, 4))}"
        for _ in range(400)
    ]
    lines.append("the user and the assistant talk in plain words about lists of numbers")
    return train_sentencepiece(lines, path, vocab_size=300)


def tiny_model_dir(
    path: str | os.PathLike[str], seed: int = 0, dim: int = 32, n_layers: int = 2
) -> Path:
    """A randomly initialised tiny Llama (l3 format) with the task's ``tokenizer.model``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok_tmp = path.parent / f".{path.name}.tokenizer.model"
    tok = train_tokenizer(tok_tmp, seed)
    args = ModelArgs(
        dim=dim,
        n_layers=n_layers,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tok.n_words,
        max_seq_len=256,
    )
    save_checkpoint(Transformer.build(args, seed=seed), path, format="l3")
    tok_tmp.replace(path / "tokenizer.model")
    return path
