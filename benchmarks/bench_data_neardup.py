"""Near-duplicate detection quality, l3-data (its defaults: word 3-grams, 20 bands x 5 rows,
exact Jaccard >= 0.5 on the candidates) against datatrove (its defaults: 5-grams, 14 x 8):
precision and recall of duplicate pairs on seeded synthetic sets with controlled edit rates
(prose, and news-like articles sharing templates and boilerplate), then on the shared dev set
``neardup_100`` as a final check (read at run time, never tuned on).

    python benchmarks/bench_data_neardup.py [--eval ../shared/eval] [--docs 6000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
from _data_synth import corpus, news_corpus

from l3_data.steps.global_arrays import cluster_members
from l3_data.steps.minhash import MinHashDedup, MinHasher, cluster, exact_jaccard

RATES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def ours(rows: list[dict]) -> list[list[str]]:
    """The minhash_dedup step's defaults, exact Jaccard verification included."""
    d = MinHashDedup()
    h = MinHasher(d.bands * d.rows, d.ngram, d.seed)
    shingles = [h.shingles(r["text"]) for r in rows]
    sets = [np.unique(s) for s in shingles]
    similarity = exact_jaccard(lambda idx: {int(i): sets[i] for i in idx})
    labels = cluster(
        h.signatures_of_shingles(shingles), d.bands, d.rows, d.threshold, None, similarity
    )
    return [[rows[i]["id"] for i in g] for g in cluster_members(labels)]


def ours_former(rows: list[dict]) -> list[list[str]]:
    """The former defaults: 5-grams, 14 x 8, signature agreement >= 0.5 (datatrove's banding)."""
    sig = MinHasher(14 * 8, 5).signatures([r["text"] for r in rows])
    labels = cluster(sig, 14, 8, 0.5)
    return [[rows[i]["id"] for i in g] for g in cluster_members(labels)]


def datatrove(rows: list[dict]) -> list[list[str]]:
    from datatrove.data import Document
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.writers import JsonlWriter

    tmp = Path(tempfile.mkdtemp(prefix="dt_neardup_"))
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    docs = [Document(text=r["text"], id=r["id"]) for r in rows]
    w = str(tmp)
    try:
        for steps, tasks in (
            ([docs, MinhashDedupSignature(f"{w}/sigs", config=cfg)], 1),
            ([MinhashDedupBuckets(f"{w}/sigs", f"{w}/buckets", config=cfg)], cfg.num_buckets),
            (
                [
                    MinhashDedupCluster(
                        f"{w}/buckets", f"{w}/remove", config=cfg, save_cluster_id=True
                    )
                ],
                1,
            ),
            (
                [
                    docs,
                    MinhashDedupFilter(
                        f"{w}/remove",
                        load_cluster_ids=True,
                        exclusion_writer=JsonlWriter(f"{w}/removed"),
                    ),
                    JsonlWriter(f"{w}/kept"),
                ],
                1,
            ),
        ):
            LocalPipelineExecutor(
                steps, tasks=tasks, workers=1, logging_dir=f"{w}/logs{len(steps)}{tasks}"
            ).run()
        groups = defaultdict(list)
        import gzip

        for p in itertools.chain((tmp / "kept").glob("*.gz"), (tmp / "removed").glob("*.gz")):
            with gzip.open(p, "rt") as f:
                for line in f:
                    row = json.loads(line)
                    cid = row.get("metadata", {}).get("minhash_cluster_id", -1)
                    if cid != -1:
                        groups[cid].append(row["id"])
        return [g for g in groups.values() if len(g) > 1]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pairs(clusters: list[list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for g in clusters for p in itertools.combinations(g, 2)}


def pr(found: set, truth: set) -> dict:
    tp = len(found & truth)
    return {
        "precision": round(tp / len(found), 4) if found else 1.0,
        "recall": round(tp / len(truth), 4) if truth else 1.0,
        "pairs_found": len(found),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--eval", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "eval"
    )
    ap.add_argument("--docs", type=int, default=6000)
    args = ap.parse_args()

    for name, (rows, planted) in (
        ("synthetic prose", corpus(args.docs, dup_fraction=0.3, rates=RATES, seed=7)),
        ("synthetic news", news_corpus(args.docs, dup_fraction=0.3, rates=RATES, seed=8)),
    ):
        # truth: every pair within a group of an original and its copies
        groups = defaultdict(set)
        for c, (o, _) in planted.items():
            groups[o] |= {o, c}
        truth = pairs([sorted(g) for g in groups.values()])
        family = {m: o for o, g in groups.items() for m in g}
        print(
            f"{name} ({len(rows)} docs, {len(planted)} copies at edit rates {RATES}, "
            f"{len(truth)} true pairs):"
        )
        for label, fn in (
            ("l3-data", ours),
            ("datatrove", datatrove),
            ("l3-data former defaults (5-gram 14x8, signature)", ours_former),
        ):
            t0 = time.perf_counter()
            clusters = fn(rows)
            dt = time.perf_counter() - t0
            found = pairs(clusters)
            per_rate = {}
            for rate in RATES:
                copies = [(c, o) for c, (o, r) in planted.items() if r == rate]
                per_rate[rate] = round(
                    sum(tuple(sorted(p)) in found for p in copies) / len(copies), 3
                )
            # a removal is false when the document joins a cluster whose kept (first) member
            # is not of its family
            order = {r["id"]: i for i, r in enumerate(rows)}
            removed = false = 0
            for g in clusters:
                kept = min(g, key=order.__getitem__)
                for m in g:
                    if m != kept:
                        removed += 1
                        false += family.get(m, m) != family.get(kept, kept)
            print(
                f"  {label}: {pr(found, truth)}; recall by edit rate {per_rate}; "
                f"removed {removed}, false removals {false}; {dt:.1f} s"
            )

    docs = [json.loads(x) for x in (args.eval / "neardup_100.docs.jsonl").read_text().splitlines()]
    truth = {
        tuple(sorted((r["a"], r["b"])))
        for r in map(
            json.loads, (args.eval / "neardup_100.truth_pairs.jsonl").read_text().splitlines()
        )
    }
    print(f"final check, neardup_100 ({len(docs)} docs, {len(truth)} true pairs):")
    print(f"  l3-data:   {pr(pairs(ours(docs)), truth)}")
    print(f"  datatrove: {pr(pairs(datatrove(docs)), truth)}")


if __name__ == "__main__":
    main()
