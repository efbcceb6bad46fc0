"""The small-vocabulary corpus for CPU sweeps: ``builtin:stdlib-small``.

l3-core's built-in corpus (Python's standard library: code and docstrings) with a 512-piece
byte-fallback BPE (+256 Llama 3 specials = 768 ids) instead of 8,192 ids. At sweep sizes the
embedding and output head of an 8,192-id model are most of its parameters, so width bought
vocabulary rows rather than transformer blocks; at 768 ids a 32-wide model's head is 25K
parameters and the ladder's size is spent on blocks.

The documents and the train/validation split are l3-core's (:func:`l3_core.corpus.documents`,
:func:`l3_core.corpus.is_validation`): deterministic, nothing downloaded. The BPE is trained
on every line of the training split in order, so the same Python gives the same ids. Built
once per cache (``$L3_CACHE``) in a temporary directory renamed into place.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from l3_core.corpus import build_corpus, cache_root
from l3_core.tokenizer import Tokenizer

if TYPE_CHECKING:
    from l3_scaling.cloze import ClozeTask

NAME = "builtin:stdlib-small"
VERSION = "v1"
PIECES = 512  # + 256 specials = 768 ids
VOCAB_SIZE = PIECES + 256
SPLITS = ("train", "val")


def corpus_dir(cache_dir: str | Path | None = None) -> Path:
    """Where the corpus lives (built or not): ``<cache>/stdlib-small-v1-py3XX``."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return root / f"stdlib-small-{VERSION}-{py}"


def small_shards(cache_dir: str | Path | None = None, split: str = "train") -> Path:
    """The shard directory of ``split`` ("train" or "val"), building the corpus on first use.
    Each split holds its shards, ``manifest.json`` and the ``tokenizer.model``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    target = corpus_dir(cache_dir)
    if not (target / "val" / "manifest.json").is_file():
        build_small_corpus(target)
    return target / split


def small_tokenizer(cache_dir: str | Path | None = None) -> Tokenizer:
    """The corpus's tokenizer (768 ids)."""
    return Tokenizer.from_file(small_shards(cache_dir) / "tokenizer.model")


def build_small_corpus(target: Path, max_bytes: int = 12_000_000) -> None:
    """Build the corpus into ``target`` (its ``train`` and ``val`` splits) from the first
    ``max_bytes`` of the standard library's files (l3-core's selection)."""
    build_corpus(target, vocab_size=PIECES, max_bytes=max_bytes)


# The corpora a sweep's ``data_path`` may name that l3-scaling builds (l3-core resolves its
# own "builtin:stdlib"): name -> vocabulary size.
BUILTIN_VOCAB = {NAME: VOCAB_SIZE}


def builtin_vocab_size(data_path: str) -> int | None:
    """The vocabulary of the l3-scaling corpus ``data_path`` names, or None for any other."""
    return BUILTIN_VOCAB.get(data_path)


def data_table(data_path: str) -> dict[str, str]:
    """The trainer's ``[data]`` paths for ``data_path``: the built shard directories of an
    l3-scaling corpus (built here on first use), else ``data_path`` itself."""
    if data_path in BUILTIN_VOCAB:
        return {"path": str(small_shards()), "val_path": str(small_shards(split="val"))}
    return {"path": data_path}


def small_cloze(items: int = 400, seed: int = 0, cache_dir: str | Path | None = None) -> ClozeTask:
    """The cloze task (:mod:`l3_scaling.cloze`) from this corpus's validation documents."""
    from l3_core.shards import ShardDataset
    from l3_scaling.cloze import build_cloze

    docs = [np.asarray(d) for d, _ in ShardDataset(small_shards(cache_dir, "val")).documents()]
    return build_cloze(docs, items=items, seed=seed, max_id=PIECES)
