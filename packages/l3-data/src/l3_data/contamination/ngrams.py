"""Hashes of a token sequence's n-grams and the share of its tokens they cover.

An n-gram's hash is a polynomial over its ids modulo 2**64 (one vectorised pass per position
of the window), finished with splitmix64 so that the bits are uniform and ``hash % P`` spreads
the n-grams evenly over P partitions. Two different n-grams collide with probability about
2**-64 per pair: at 10**12 distinct n-grams in the corpus, a benchmark n-gram is wrongly found
with probability below 10**-7.
"""

from __future__ import annotations

import numpy as np

_BASE = np.uint64(0x100000001B3)  # the FNV prime: odd, so the polynomial is a bijection per id
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


def ngram_hashes(tokens: np.ndarray, n: int) -> np.ndarray:
    """uint64 [len(tokens) - n + 1]: the hash of the n-gram starting at each position
    (empty when the sequence is shorter than ``n``)."""
    ids = np.asarray(tokens).astype(np.uint64, copy=False)
    count = ids.size - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        h = np.zeros(count, np.uint64)
        for j in range(n):
            h = h * _BASE + (ids[j : j + count] + np.uint64(1))
        return _splitmix64(h)


def covered_tokens(found: np.ndarray, n: int) -> np.ndarray:
    """bool [len(found) + n - 1]: token i is covered when an n-gram over it was ``found``
    (the n-gram starting at s covers tokens s .. s + n - 1)."""
    if found.size == 0:
        return np.zeros(0, bool)
    # +1 where a found n-gram starts, -1 where it ends; a running sum > 0 means covered
    delta = np.zeros(found.size + n, np.int64)
    starts = np.flatnonzero(found)
    np.add.at(delta, starts, 1)
    np.add.at(delta, starts + n, -1)
    return np.cumsum(delta[:-1]) > 0
