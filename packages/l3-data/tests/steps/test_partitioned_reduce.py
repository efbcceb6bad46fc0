"""The hash-partitioned reduces of line_dedup and minhash_dedup decide exactly what an
independent in-memory reference decides, for any number of partitions."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from l3_data.document import Document
from l3_data.steps.base import ChunkContext
from l3_data.steps.line_dedup import LineDedup
from l3_data.steps.minhash import (
    MinHashDedup,
    MinHasher,
    cluster,
    exact_jaccard,
    first_of_cluster,
)
from l3_data.steps.partitions import gather, split


def _chunks(docs: list[Document], rng: random.Random) -> list[list[Document]]:
    out, i = [], 0
    while i < len(docs):
        n = rng.randint(1, 23)
        out.append(docs[i : i + n])
        i += n
    return out


def _run(step, chunks, state: Path):
    units = [f"u{i}" for i in range(len(chunks))]
    arrays = {u: step.collect(c) for u, c in zip(units, chunks)}
    summary = step.reduce(units, arrays.__getitem__, state)
    kept, removed = [], []
    for u, c in zip(units, chunks):
        ctx = ChunkContext(unit=u, workdir=state)
        kept += [
            (d.id, d.text) for d in step.apply([Document(d.text, d.id) for d in c], ctx, state)
        ]
        removed += [e["id"] for e in ctx.excluded]
    return kept, removed, summary


def test_split_then_gather_is_a_permutation_of_the_rows():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, 500, dtype=np.uint64)
    doc = rng.integers(0, 40, 500).astype(np.uint32)
    arrays = {"n": np.array([40]), **split(keys, 7, doc=doc)}
    seen = []
    for p in range(7):
        k, d, _ = gather(["u"], {"u": arrays}.__getitem__, p)
        assert (k % np.uint64(7) == p).all()
        seen += list(zip(k.tolist(), d.tolist()))
    assert sorted(seen) == sorted(zip(keys.tolist(), doc.astype(np.int64).tolist()))


def _line_reference(docs: list[Document], bucket_size: int, max_count: int) -> list[str]:
    """Per bucket, a Counter of each document's distinct lines; drop those seen > max_count."""
    out = []
    for b in range(0, len(docs), bucket_size):
        bucket = docs[b : b + bucket_size]
        counts = Counter(line for d in bucket for line in {x.strip() for x in d.text.split("\n")})
        for d in bucket:
            kept = [x for x in d.text.split("\n") if counts[x.strip()] <= max_count]
            out.append("\n".join(kept))
    return out


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_line_dedup_partitions_match_a_counter_reference(tmp_path, partitions):
    rng = random.Random(5)
    # lines drawn from a small pool so that many land near the max_count boundary
    pool = [f"line {i}" for i in range(40)]
    docs = [
        Document("\n".join([*rng.choices(pool, k=rng.randint(1, 6)), f"own {i}"]), f"d{i}")
        for i in range(300)
    ]
    step = LineDedup(bucket_size=37, max_count=6, partitions=partitions)
    step.setup()
    kept, removed, summary = _run(step, _chunks(docs, rng), tmp_path)
    expected = _line_reference(docs, 37, 6)
    assert [t for _, t in kept] == expected
    assert removed == []  # every document keeps its own line
    assert summary["buckets"] == 9 and summary["frequent_lines"] > 0
    assert sum("line" in t for t in expected) > 0  # some shared lines survive


def _near_dup_corpus(rng: random.Random, prose, n: int = 240) -> list[Document]:
    docs = []
    for i in range(n):
        if docs and rng.random() < 0.35:
            words = rng.choice(docs).text.split()
            for k in rng.sample(range(len(words)), max(1, len(words) // rng.choice([100, 20, 8]))):
                words[k] = f"w{rng.random():.6f}"
            text = " ".join(words)
        else:
            text = prose(rng, rng.randint(20, 60)) if i % 17 else "..."  # some without words
        docs.append(Document(text, f"d{i}", metadata={"lang": rng.choice(["en", "fr"])}))
    return docs


def _minhash_reference(
    step: MinHashDedup, docs: list[Document]
) -> tuple[list[str], list[list[str]]]:
    h = MinHasher(step.bands * step.rows, step.ngram, step.seed)
    shingles = [h.shingles(d.text) for d in docs]
    sig = h.signatures_of_shingles(shingles)
    sets = [np.unique(s) for s in shingles]
    similarity = (
        exact_jaccard(lambda idx: {int(i): sets[i] for i in idx})
        if step.verify == "jaccard"
        else None
    )
    group = (
        np.array([hash(d.metadata["lang"]) % 2**63 for d in docs], dtype=np.uint64)
        if step.per_language
        else None
    )
    labels = cluster(sig, step.bands, step.rows, step.threshold, group, similarity)
    keep = first_of_cluster(labels)
    clusters = {}
    for i, lab in enumerate(labels.tolist()):
        clusters.setdefault(lab, []).append(docs[i].id)
    return [d.id for d, k in zip(docs, keep) if not k], sorted(
        g for g in clusters.values() if len(g) > 1
    )


@pytest.mark.parametrize(
    ("partitions", "options"),
    [
        (1, {}),
        (4, {}),
        (11, {}),
        (5, {"verify": "signature", "threshold": 0.6}),
        (3, {"per_language": True, "bands": 9, "rows": 3}),
    ],
)
def test_minhash_partitions_match_the_in_memory_clustering(
    tmp_path, rng, prose, partitions, options
):
    docs = _near_dup_corpus(rng, prose)
    step = MinHashDedup(partitions=partitions, **options)
    step.setup()
    kept, removed, summary = _run(step, _chunks(docs, random.Random(partitions)), tmp_path)
    ref_removed, ref_clusters = _minhash_reference(step, docs)
    assert removed == ref_removed and len(removed) > 20
    assert [i for i, _ in kept] == [d.id for d in docs if d.id not in set(ref_removed)]
    clusters = [json.loads(x) for x in (tmp_path / "clusters.jsonl").read_text().splitlines()]
    assert sorted(clusters) == ref_clusters
    assert summary["duplicates"] == len(ref_removed)


def test_chunk_collected_without_partitions_is_refused_by_name(tmp_path):
    from l3_data.errors import WorkdirMismatchError

    old = {"u0": {"hash": np.zeros(3, np.uint64), "count": np.array([3])}}
    with pytest.raises(WorkdirMismatchError, match="chunk u0: .*--restart"):
        LineDedup(partitions=2).reduce(["u0"], old.__getitem__, tmp_path)
