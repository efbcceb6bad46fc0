"""Synthetic corpora with planted near-duplicates at controlled edit rates (shared by the
l3-data benchmarks). English-looking prose: common words mixed with a large vocabulary."""

from __future__ import annotations

import json
import random
from pathlib import Path

COMMON = [
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


def prose(rng: random.Random, n_words: int, vocab: int = 50_000) -> str:
    ws = [
        rng.choice(COMMON) if rng.random() < 0.4 else f"w{rng.randrange(vocab)}"
        for _ in range(n_words)
    ]
    sentences = [" ".join(ws[i : i + 14]).capitalize() + "." for i in range(0, len(ws), 14)]
    return "\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5))


def edit(rng: random.Random, text: str, rate: float) -> str:
    """Replace a ``rate`` fraction of the words (chosen at random) by new words."""
    ws = text.split(" ")
    k = max(1, round(rate * len(ws)))
    for i in rng.sample(range(len(ws)), k):
        ws[i] = f"e{rng.randrange(10**9)}"
    return " ".join(ws)


def corpus(
    n_docs: int,
    dup_fraction: float,
    rates: tuple[float, ...],
    seed: int = 0,
    words: tuple[int, int] = (150, 450),
    junk_fraction: float = 0.0,
) -> tuple[list[dict], dict[str, tuple[str, float]]]:
    """Rows ``{id, text}``; ``truth`` maps each planted copy's id to (its original, edit rate)."""
    rng = random.Random(seed)
    rows: list[dict] = []
    truth: dict[str, tuple[str, float]] = {}
    n_orig = int(n_docs * (1 - dup_fraction - junk_fraction))
    for i in range(n_orig):
        rows.append({"id": f"o{i}", "text": prose(rng, rng.randint(*words))})
    for j in range(int(n_docs * junk_fraction)):  # logs and symbol soup for the filters
        if j % 2:
            text = "\n".join(
                f"ERROR worker {j % 7} failed: connection reset (retry {k % 3})"
                for k in range(rng.randint(20, 60))
            )
        else:
            text = " ".join(f"#{rng.randrange(999)} ... {rng.randrange(99)}" for _ in range(80))
        rows.append({"id": f"j{j}", "text": text})
    n_orig = len(rows)
    n_origs_only = n_orig - int(n_docs * junk_fraction)
    for j in range(n_docs - n_orig):
        src = rows[rng.randrange(n_origs_only)]
        rate = rates[j % len(rates)]
        rows.append({"id": f"c{j}", "text": edit(rng, src["text"], rate)})
        truth[f"c{j}"] = (src["id"], rate)
    rng.shuffle(rows)
    return rows, truth


def write_shards(rows: list[dict], folder: Path, n_files: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(n_files):
        p = folder / f"part{f}.jsonl"
        p.write_text("".join(json.dumps(r) + "\n" for r in rows[f::n_files]), encoding="utf-8")
        paths.append(p)
    return paths
