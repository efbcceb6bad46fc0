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


# -- news-like documents with shared templates and boilerplate (hard negatives) -------------

_PLACES = [
    f"{a}{b}"
    for a in ("North", "South", "East", "West", "New", "Port", "Lake", "Fort")
    for b in ("field", "haven", "ford", "bridge", "wood", "ton", "mouth", "dale")
]
_PEOPLE = [
    f"{f} {s}"
    for f in (
        "Anna",
        "Ben",
        "Carla",
        "David",
        "Elena",
        "Farid",
        "Grace",
        "Hugo",
        "Ines",
        "Jonas",
        "Kemal",
        "Lina",
    )
    for s in ("Smith", "Okafor", "Novak", "Garcia", "Chen", "Müller", "Rossi", "Haddad")
]
_ORGS = [
    "the city council",
    "the regional water board",
    "the national rail operator",
    "the university hospital",
    "the chamber of commerce",
    "the school district",
    "the port authority",
    "the transport ministry",
    "a local charity",
    "the police",
]
_TOPICS = [
    "budget",
    "flood defences",
    "bus routes",
    "housing plan",
    "new stadium",
    "strike",
    "heat wave",
    "bridge repairs",
    "election",
    "tax reform",
    "museum",
    "wind farm",
]
_TEMPLATES = [
    "{org} said on {day} that the {topic} would cost about {n} million.",
    "{person}, a spokesperson for {org}, told reporters that talks were continuing.",
    "Residents of {place} gathered outside the town hall to protest against the {topic}.",
    "According to figures released on {day}, {n} people were affected in {place}.",
    "{person} said the decision on the {topic} was expected before the end of the month.",
    "Critics argue that {org} has failed to explain how the {topic} will be funded.",
    "The {topic} has been debated in {place} for more than {n} years.",
    "{org} declined to comment on the report about the {topic}.",
    "Local businesses in {place} said they had lost {n} percent of their customers.",
    "A final vote on the {topic} is scheduled for {day}, {person} confirmed.",
]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_BOILERPLATE = (
    "Sign up for our daily newsletter to get the latest local news in your inbox. "
    "All rights reserved. Reproduction without permission is prohibited."
)


def news(rng: random.Random, n_sentences: int) -> str:
    """A news-like article: sentences from a few templates with filled slots, then the site's
    boilerplate. Two unrelated articles share many word 3-grams (templates, boilerplate)."""
    out = []
    for _ in range(n_sentences):
        sentence = rng.choice(_TEMPLATES).format(
            org=rng.choice(_ORGS),
            person=rng.choice(_PEOPLE),
            place=rng.choice(_PLACES),
            topic=rng.choice(_TOPICS),
            day=rng.choice(_DAYS),
            n=rng.randint(2, 900),
        )
        out.append(sentence[0].upper() + sentence[1:])
    paras = [" ".join(out[i : i + 4]) for i in range(0, len(out), 4)]
    return "\n\n".join(paras) + "\n\n" + _BOILERPLATE


def news_corpus(
    n_docs: int, dup_fraction: float, rates: tuple[float, ...], seed: int = 0
) -> tuple[list[dict], dict[str, tuple[str, float]]]:
    """Like :func:`corpus` with :func:`news` articles (12-40 sentences): planted copies at the
    given word-edit rates among unrelated articles that share templates and boilerplate."""
    rng = random.Random(seed)
    n_orig = int(n_docs * (1 - dup_fraction))
    rows = [{"id": f"o{i}", "text": news(rng, rng.randint(12, 40))} for i in range(n_orig)]
    truth: dict[str, tuple[str, float]] = {}
    for j in range(n_docs - n_orig):
        src = rows[rng.randrange(n_orig)]
        rate = rates[j % len(rates)]
        rows.append({"id": f"c{j}", "text": edit(rng, src["text"], rate)})
        truth[f"c{j}"] = (src["id"], rate)
    rng.shuffle(rows)
    return rows, truth
