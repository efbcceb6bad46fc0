"""MinHash LSH near-duplicate detection, vectorised with numpy.

Signatures: a document's word n-gram shingles are hashed to 64 bits (each word once with
xxh3, n-grams combined in numpy); the ``num_perm = bands * rows`` hash functions are
multiply-shift hashes ``(a * x + b) >> 32`` evaluated for a whole block of shingles of many
documents at once, and the minimum per document is taken with ``np.minimum.reduceat``: no
Python loop over hash functions or shingles.

Clustering: each band of ``rows`` values is hashed; documents sharing a band hash are
candidate pairs. A candidate pair is joined when its similarity is at least ``threshold``:
by default the exact Jaccard similarity of the two shingle sets (``verify = "jaccard"``; each
chunk saves its documents' shingle hashes and the reduce loads only those of documents in a
candidate pair), or the signature agreement, an estimate of it (``verify = "signature"``, no
shingles stored). Exact verification lets the banding be wide (candidates from low
similarities, so high recall) without joining the unrelated pairs that wide banding also
proposes. Connected components (scipy's union-find over the sparse pair graph) are the
clusters; each keeps its first document in corpus order.

The step's clustering is hash-partitioned (:class:`~l3_data.steps.base.PartitionedStep`):
each chunk saves its ``bands`` (band key, band, document) rows per document in ``partitions``
parts by band key, beside its shingles (8 bytes per distinct shingle per document, exact
verification) or signatures (``4 * num_perm`` bytes per document); a part, on any worker,
holds its ``1 / partitions`` share of the rows (18 bytes each, plus the sort's temporaries),
finds its candidate pairs and verifies them, loading the shingles of candidate documents only;
the merge joins the verified pairs over the documents in a pair. :func:`cluster` is the same
clustering in memory, over one signature matrix.

The probability that a pair of Jaccard similarity ``s`` becomes a candidate is
``1 - (1 - s**rows)**bands`` (:func:`candidate_probability`; ``l3-data scurve`` draws it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from l3_data.document import Document
from l3_data.steps.base import ChunkContext, PartitionedStep, keep_mask_apply, register
from l3_data.steps.global_arrays import Loader, cluster_members, save_array, write_clusters
from l3_data.steps.limits import FRACTION, POSITIVE, OneOf, option_limits
from l3_data.steps.partitions import gather, split, unit_sizes

_WORD = re.compile(r"\w+")
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_POLY = np.uint64(0x9E3779B97F4A7C15)
EMPTY = np.uint32(0xFFFFFFFF)
_CHARS_PER_WORD = 10


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads the bits of combined hashes."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX1
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX2
    return x ^ (x >> np.uint64(31))


class _WordHashes(dict):
    """word -> 64-bit hash, computed on first use (``map(cache.__getitem__, words)`` is the
    fastest way to hash a word list from Python)."""

    def __missing__(self, word: str) -> int:
        h = self[word] = xxhash.xxh3_64_intdigest(word.encode())
        return h


class MinHasher:
    """Computes MinHash signatures of many texts at once."""

    def __init__(
        self, num_perm: int = 112, ngram: int = 5, seed: int = 1, block_shingles: int = 1 << 12
    ) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.ngram = ngram
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(
            1
        )
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self.block = block_shingles
        self._cache = _WordHashes()

    def shingles(self, text: str) -> np.ndarray:
        """64-bit hashes of the word ``ngram``-grams of ``text`` (lower-cased words); of its
        character ``ngram``-grams when it has no spaces to speak of (over 10 characters per
        word). A text shorter than ``ngram`` tokens is one shingle; one with no word has none."""
        words = _WORD.findall(text.lower())
        if not words:
            return np.zeros(0, np.uint64)
        if len(text) > _CHARS_PER_WORD * len(words):
            # A script written without spaces (Chinese, Japanese, Thai): a regex "word" is a
            # whole clause, so shingle characters instead.
            words = list("".join(words))
        if len(self._cache) > 2_000_000:
            self._cache.clear()
        hashed = list(map(self._cache.__getitem__, words))
        wh = np.array(hashed, dtype=np.uint64)
        n = min(self.ngram, len(wh))
        m = len(wh) - n + 1
        acc = wh[:m].copy()
        for k in range(1, n):
            acc = acc * _POLY + wh[k : k + m]
        return _mix64(acc)

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), num_perm]`` uint32 signatures; a text with no words gets all ``EMPTY``."""
        return self.signatures_of_shingles([self.shingles(t) for t in texts])

    def signatures_of_shingles(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        """Signatures of documents given as their shingle hashes (:meth:`shingles`)."""
        sig = np.full((len(shingles), self.num_perm), EMPTY, np.uint32)
        batch: list[np.ndarray] = []
        rows: list[int] = []
        total = 0
        for i, s in enumerate(shingles):
            if s.size:
                batch.append(s)
                rows.append(i)
                total += s.size
            if total >= self.block:
                self._fill(sig, batch, rows)
                batch, rows, total = [], [], 0
        if batch:
            self._fill(sig, batch, rows)
        return sig

    def _fill(self, sig: np.ndarray, batch: list[np.ndarray], rows: list[int]) -> None:
        sh = np.concatenate(batch)
        starts = np.zeros(len(batch), np.int64)
        np.cumsum([len(b) for b in batch[:-1]], out=starts[1:])
        hv = np.multiply(sh[:, None], self.a[None, :])
        hv += self.b
        hv >>= np.uint64(32)
        sig[rows] = np.minimum.reduceat(hv, starts, axis=0)


def band_hash(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """``[n]`` uint64: one hash of band ``band`` (``rows`` signature values) of each document."""
    acc = np.zeros(sig.shape[0], np.uint64)
    for r in range(band * rows, (band + 1) * rows):
        acc = _mix64(acc * _POLY + sig[:, r].astype(np.uint64))
    return acc


def candidate_probability(similarity: np.ndarray | float, bands: int, rows: int) -> np.ndarray:
    """The LSH S-curve: probability that a pair of Jaccard ``similarity`` shares a band."""
    return 1.0 - (1.0 - np.asarray(similarity, float) ** rows) ** bands


def _run_pairs(members: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (first of run, member) of sorted ``members`` whose flag ``same`` says they share
    the key of the row before."""
    run_start = np.maximum.accumulate(np.where(same, 0, np.arange(len(same))))
    pos = np.flatnonzero(same)
    return members[run_start[pos]], members[pos]


def _unique_pairs(src: list[np.ndarray], dst: list[np.ndarray]) -> np.ndarray:
    if not src:
        return np.zeros((0, 2), np.int64)
    pairs = np.stack([np.concatenate(src), np.concatenate(dst)], 1).astype(np.int64)
    pairs.sort(axis=1)
    return np.unique(pairs, axis=0)


def candidate_pairs(
    sig: np.ndarray, bands: int, rows: int, group: np.ndarray | None = None
) -> np.ndarray:
    """``[k, 2]`` distinct index pairs (``i < j``) of documents sharing at least one band.

    Within a band's bucket every member is paired with the bucket's first member. ``group``
    (e.g. a language hash) keeps pairs within a group; documents with no shingles are never
    paired. Bands are hashed one at a time, so memory beyond the signatures is a few arrays of
    ``n`` 64-bit values plus the pairs."""
    idx = np.flatnonzero(~np.all(sig == EMPTY, axis=1))
    sub, g = sig[idx], None if group is None else group[idx]
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    for b in range(bands):
        h = _band_key(sub, b, rows, g)
        order = np.argsort(h, kind="stable")
        hs = h[order]
        same = np.zeros(len(hs), bool)
        same[1:] = hs[1:] == hs[:-1]
        del h, hs
        if same.any():
            s, d = _run_pairs(idx[order], same)
            src.append(s)
            dst.append(d)
    return _unique_pairs(src, dst)


def _band_key(sig: np.ndarray, band: int, rows: int, group: np.ndarray | None) -> np.ndarray:
    h = band_hash(sig, band, rows)
    return h if group is None else _mix64(h ^ group.astype(np.uint64))


def band_keys(
    sig: np.ndarray, bands: int, rows: int, group: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (band key, band, document) row of the documents with shingles, for the
    partitioned clustering: documents sharing a band share its key."""
    idx = np.flatnonzero(~np.all(sig == EMPTY, axis=1))
    g = None if group is None else group[idx]
    keys = [_band_key(sig[idx], b, rows, g) for b in range(bands)]
    n = len(idx)
    return (
        np.concatenate(keys) if keys else np.zeros(0, np.uint64),
        np.repeat(np.arange(bands, dtype=np.uint16), n),
        np.tile(idx, bands),
    )


def bucket_pairs(keys: np.ndarray, band: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """The pairs :func:`candidate_pairs` finds, from rows (key, band, document) of any subset of
    buckets: within each (band, key) bucket every member paired with its lowest document."""
    order = np.lexsort((doc, keys, band))
    k, b = keys[order], band[order]
    same = np.zeros(len(order), bool)
    same[1:] = (k[1:] == k[:-1]) & (b[1:] == b[:-1])
    del k, b
    if not same.any():
        return np.zeros((0, 2), np.int64)
    s, d = _run_pairs(doc[order], same)
    return _unique_pairs([s], [d])


Similarity = Callable[[np.ndarray], np.ndarray]


def signature_agreement(sig: np.ndarray, chunk_pairs: int = 1 << 20) -> Similarity:
    """Similarity of pairs as the share of equal signature values (an estimate of Jaccard)."""

    def similarity(pairs: np.ndarray) -> np.ndarray:
        out = np.zeros(len(pairs))
        for s in range(0, len(pairs), chunk_pairs):
            p = pairs[s : s + chunk_pairs]
            out[s : s + chunk_pairs] = (sig[p[:, 0]] == sig[p[:, 1]]).mean(axis=1)
        return out

    return similarity


def exact_jaccard(shingles_of: Callable[[np.ndarray], dict[int, np.ndarray]]) -> Similarity:
    """Similarity of pairs as the Jaccard similarity of their shingle sets;
    ``shingles_of(indices)`` returns the sorted unique shingle hashes of those documents."""

    def similarity(pairs: np.ndarray) -> np.ndarray:
        sets = shingles_of(np.unique(pairs))
        out = np.zeros(len(pairs))
        for k, (i, j) in enumerate(pairs.tolist()):
            a, b = sets[i], sets[j]
            inter = len(np.intersect1d(a, b, assume_unique=True))
            union = len(a) + len(b) - inter
            out[k] = inter / union if union else 0.0
        return out

    return similarity


def cluster(
    sig: np.ndarray,
    bands: int,
    rows: int,
    threshold: float,
    group: np.ndarray | None = None,
    similarity: Similarity | None = None,
) -> np.ndarray:
    """Cluster label per document (documents alone get their own label).

    Candidate pairs share a band (:func:`candidate_pairs`); a pair is joined when its
    ``similarity`` (default: :func:`signature_agreement`) is at least ``threshold``."""
    n = sig.shape[0]
    pairs = candidate_pairs(sig, bands, rows, group)
    if len(pairs):
        ok = (similarity or signature_agreement(sig))(pairs) >= threshold
        a, c = pairs[ok, 0], pairs[ok, 1]
    else:
        a = c = np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(a), np.int8), (a, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels


def first_of_cluster(labels: np.ndarray) -> np.ndarray:
    """True for the first document (lowest index) of each cluster."""
    n = len(labels)
    first = np.full(labels.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels] == np.arange(n)


def _rows_loader(
    units: list[str], sizes: list[int], load: Loader, key: str
) -> Callable[[np.ndarray], dict[int, np.ndarray]]:
    """``rows_of(indices)``: the rows of per-document array ``key`` (``"shingles"``, ragged by
    ``shingle_count``; or ``"sig"``) of those documents, loading each chunk once and keeping
    only the requested documents' rows."""
    bounds = np.cumsum([0, *sizes])

    def rows_of(indices: np.ndarray) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        owner = np.searchsorted(bounds, indices, side="right") - 1
        for u in np.unique(owner).tolist():
            data = load(units[u])
            flat = data[key]
            if key == "shingles":
                offsets = np.concatenate([[0], np.cumsum(data["shingle_count"])])
            for i in indices[owner == u].tolist():
                k = i - int(bounds[u])
                # copies: a view would keep the whole chunk's array alive
                out[i] = (
                    flat[offsets[k] : offsets[k + 1]] if key == "shingles" else flat[k]
                ).copy()
            del data, flat
        return out

    return rows_of


def signature_agreement_of(rows_of: Callable[[np.ndarray], dict[int, np.ndarray]]) -> Similarity:
    """:func:`signature_agreement` over signatures loaded for the pairs' documents only."""

    def similarity(pairs: np.ndarray) -> np.ndarray:
        idx = np.unique(pairs)
        rows = rows_of(idx)
        sig = np.stack([rows[i] for i in idx.tolist()]) if len(idx) else np.zeros((0, 0))
        return signature_agreement(sig)(np.searchsorted(idx, pairs))

    return similarity


@register("minhash_dedup")
@dataclass(kw_only=True)
class MinHashDedup(PartitionedStep):
    """Near-duplicate removal: one document per MinHash cluster (the first in corpus order).

    ``per_language`` keeps clusters within one ``lang`` (run ``langid`` first). The clustering
    is hash-partitioned (:class:`PartitionedStep`): each chunk saves its (band key, band,
    document) rows in ``partitions`` parts by band key; a part finds the candidate pairs of its
    band buckets and verifies them; the merge joins the verified pairs (union-find over the
    documents in a pair only) and writes the keep masks."""

    limits = option_limits(
        ngram=POSITIVE,
        bands=POSITIVE,
        rows=POSITIVE,
        threshold=FRACTION,
        verify=OneOf(("jaccard", "signature")),
        partitions=POSITIVE,
    )

    # The defaults target copies with up to 5% of their words edited (word 3-gram Jaccard
    # about 0.75 and above; unrelated articles sharing templates and boilerplate reach 0.36),
    # chosen on the seeded synthetic sets of benchmarks/_data_synth.py; see the README.
    ngram: int = 3
    bands: int = 20
    rows: int = 5
    threshold: float = 0.5
    verify: str = "jaccard"
    seed: int = 1
    per_language: bool = False

    def setup(self) -> None:
        self._hasher = MinHasher(self.bands * self.rows, self.ngram, self.seed)

    def collect(self, docs: list[Document]) -> dict[str, np.ndarray]:
        shingles = [self._hasher.shingles(d.text) for d in docs]
        sig = self._hasher.signatures_of_shingles(shingles)
        group = None
        if self.per_language:
            group = np.array(
                [xxhash.xxh3_64_intdigest(str(d.metadata.get("lang", "")).encode()) for d in docs],
                dtype=np.uint64,
            )
        keys, band, doc = band_keys(sig, self.bands, self.rows, group)
        out = {
            "n": np.array([len(docs)]),
            "id": np.array([d.id for d in docs], dtype=str),
            **split(keys, self.partitions, band=band, doc=doc.astype(np.uint32)),
        }
        if self.verify == "jaccard":
            sets = [np.unique(s) for s in shingles]
            out["shingles"] = np.concatenate(sets) if sets else np.zeros(0, np.uint64)
            out["shingle_count"] = np.array([len(s) for s in sets], dtype=np.int64)
        else:
            out["sig"] = sig
        return out

    def _similarity(self, units: list[str], sizes: list[int], load: Loader) -> Similarity:
        if self.verify == "jaccard":
            return exact_jaccard(_rows_loader(units, sizes, load, "shingles"))
        return signature_agreement_of(_rows_loader(units, sizes, load, "sig"))

    def reduce_partition(
        self, part: int, units: list[str], load: Loader, state_dir: Path
    ) -> dict[str, Any]:
        """Candidate pairs of part ``part``'s band buckets, verified; save those that hold."""
        keys, docs, (band,) = gather(units, load, part, ("band",))
        candidates = bucket_pairs(keys, band, docs)
        rows = len(keys)
        del keys, docs, band
        pairs = candidates
        if len(candidates):
            sim = self._similarity(units, unit_sizes(units, load), load)
            pairs = candidates[sim(candidates) >= self.threshold]
        save_array(state_dir / f"pairs{part:04d}.npy", pairs)
        return {"rows": rows, "candidate_pairs": len(candidates), "joined_pairs": len(pairs)}

    def merge(
        self, units: list[str], load: Loader, state_dir: Path, parts: list[dict[str, Any]]
    ) -> dict[str, Any]:
        sizes = unit_sizes(units, load)
        found = [np.load(state_dir / f"pairs{p:04d}.npy") for p in range(self.partitions)]
        pairs = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), np.int64)
        # Union-find over the documents in a joined pair only: memory follows the duplicates,
        # not the corpus.
        nodes = np.unique(pairs)
        local = np.searchsorted(nodes, pairs)
        graph = coo_matrix(
            (np.ones(len(local), np.int8), (local[:, 0], local[:, 1])),
            shape=(len(nodes), len(nodes)),
        )
        _, labels = connected_components(graph, directed=False)
        removed = nodes[~first_of_cluster(labels)] if len(nodes) else nodes
        start = 0
        for unit, n in zip(units, sizes):
            keep = np.ones(n, bool)
            mine = removed[(removed >= start) & (removed < start + n)]
            keep[mine - start] = False
            save_array(state_dir / f"{unit}.keep.npy", keep)
            start += n
        members = [nodes[g] for g in cluster_members(labels)]
        clusters = state_dir / "clusters.jsonl"
        write_clusters(clusters, members, units, sizes, load)
        return {
            "documents": start,
            "duplicates": len(removed),
            "clusters": len(members),
            "clusters_file": str(clusters),
            "partitions": self.partitions,
            "candidate_pairs": sum(p["candidate_pairs"] for p in parts),
        }

    def apply(self, docs: list[Document], ctx: ChunkContext, state_dir: Path) -> Iterator[Document]:
        return keep_mask_apply(
            self, docs, ctx, state_dir / f"{ctx.unit}.keep.npy", "near_duplicate"
        )
