from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "out",
]


def _prose(rng: random.Random, n_words: int, vocab: int = 4000) -> str:
    """English-looking text: common words mixed with a large synthetic vocabulary."""
    ws = [
        rng.choice(WORDS) if rng.random() < 0.4 else f"word{rng.randrange(vocab)}"
        for _ in range(n_words)
    ]
    sentences = [" ".join(ws[i : i + 12]).capitalize() + "." for i in range(0, len(ws), 12)]
    return "\n".join(" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4))


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def rng() -> random.Random:
    return random.Random(0)


@pytest.fixture
def prose():
    """``prose(rng, n_words)``: English-looking text of ``n_words`` words."""
    return _prose


@pytest.fixture
def write_rows():
    """``write_rows(path, rows)``: write dicts as JSONL; returns the path."""
    return _write_jsonl
