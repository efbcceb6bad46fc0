"""Contamination of benchmark examples: the share of each example's tokens that lie in an
n-gram found in the corpus (paper section 5.1.4: a token is contaminated when it is part of
an 8-gram that occurs in the pre-training corpus)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l3_core.jsonl import iter_jsonl
from l3_core.tokenizer import Tokenizer
from l3_data.contamination.index import NgramIndex
from l3_data.contamination.ngrams import covered_tokens, ngram_hashes
from l3_data.errors import InputFormatError, OptionError

#: examples whose n-grams are looked up together (one pass over the partitions they touch)
QUERY_BATCH = 4096


@dataclass(frozen=True)
class Example:
    id: str | int
    line: int
    tokens: np.ndarray


def read_bench(
    path: str | Path, tokenizer: Tokenizer, *, id_key: str = "id", text_key: str = "text"
) -> Iterator[Example]:
    """The examples of a benchmark JSONL (``{"id", "text"}`` rows), tokenized without BOS/EOS.

    A row without a string or integer id, without a string text, or repeating an id is an
    :class:`InputFormatError` naming the file, line, field and value: every example must come
    out with its score.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: benchmark file not found")
    seen: dict[Any, int] = {}
    for line, row in iter_jsonl(path):
        ident = row.get(id_key)
        if isinstance(ident, bool) or not isinstance(ident, (str, int)):
            what = "missing" if ident is None else f"{ident!r} is not a string or integer"
            raise InputFormatError(f"{path}:{line}: field {id_key!r} {what}")
        if ident in seen:
            raise InputFormatError(
                f"{path}:{line}: field {id_key!r} = {ident!r} repeats the id of line {seen[ident]}"
            )
        seen[ident] = line
        text = row.get(text_key)
        if not isinstance(text, str):
            what = "missing" if text is None else f"is {type(text).__name__}, not a string"
            raise InputFormatError(f"{path}:{line}: field {text_key!r} {what}")
        ids = tokenizer.encode(text, bos=False, eos=False)
        yield Example(ident, line, np.asarray(ids, np.int64))


def coverage(n_tokens: int, found: np.ndarray, n: int) -> float:
    """Share of an example's ``n_tokens`` tokens covered by the ``found`` n-grams.

    An example shorter than ``n`` tokens has no n-gram, so none of its tokens can be
    matched: its contamination is 0.0 (and an empty example's too)."""
    if n_tokens < n:
        return 0.0
    return float(covered_tokens(found, n).sum() / n_tokens)


def check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise OptionError(
            f"--threshold {threshold}: expected a share in [0, 1] (an example is contaminated "
            "when its contamination is above it)"
        )


def score_examples(
    index: NgramIndex, examples: Iterable[Example], threshold: float
) -> Iterator[dict[str, Any]]:
    """``{"id", "contamination", "contaminated"}`` per example, in input order;
    ``contaminated`` is ``contamination > threshold``."""
    check_threshold(threshold)
    batch: list[Example] = []

    def flush() -> Iterator[dict[str, Any]]:
        hashes = [ngram_hashes(e.tokens, index.n) for e in batch]
        found = index.contains(np.concatenate(hashes)) if hashes else np.zeros(0, bool)
        bounds = np.cumsum([0, *(h.size for h in hashes)])
        for e, lo, hi in zip(batch, bounds[:-1], bounds[1:]):
            share = coverage(e.tokens.size, found[lo:hi], index.n)
            yield {"id": e.id, "contamination": share, "contaminated": share > threshold}
        batch.clear()

    for example in examples:
        batch.append(example)
        if len(batch) >= QUERY_BATCH:
            yield from flush()
    yield from flush()
