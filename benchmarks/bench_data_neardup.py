"""Near-duplicate detection quality, l3-data against datatrove (same 5-gram shingles, 14 bands x
8 rows): precision and recall of duplicate pairs on the shared dev set ``neardup_100`` and on
a larger synthetic set with controlled edit rates (recall reported per edit rate).

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
from _data_synth import corpus

from l3_data.steps.global_arrays import cluster_members
from l3_data.steps.minhash import MinHasher, cluster

RATES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def ours(
    rows: list[dict],
    ngram: int = 5,
    bands: int = 14,
    rows_per_band: int = 8,
    threshold: float = 0.5,
) -> list[list[str]]:
    sig = MinHasher(bands * rows_per_band, ngram).signatures([r["text"] for r in rows])
    labels = cluster(sig, bands, rows_per_band, threshold)
    return [[rows[i]["id"] for i in g] for g in cluster_members(labels)]


def ours_wide(rows: list[dict]) -> list[list[str]]:
    """A higher-recall setting: 3-grams, 20 bands x 5 rows, verification at 0.3."""
    return ours(rows, ngram=3, bands=20, rows_per_band=5, threshold=0.3)


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

    docs = [json.loads(x) for x in (args.eval / "neardup_100.docs.jsonl").read_text().splitlines()]
    truth = {
        tuple(sorted((r["a"], r["b"])))
        for r in map(
            json.loads, (args.eval / "neardup_100.truth_pairs.jsonl").read_text().splitlines()
        )
    }
    print(f"neardup_100 ({len(docs)} docs, {len(truth)} true pairs):")
    print(f"  l3-data:   {pr(pairs(ours(docs)), truth)}")
    print(f"  datatrove: {pr(pairs(datatrove(docs)), truth)}")
    print(f"  l3-data 3-gram 20x5 (not the default): {pr(pairs(ours_wide(docs)), truth)}")

    rows, planted = corpus(args.docs, dup_fraction=0.3, rates=RATES, seed=7)
    # truth: every pair within a group of an original and its copies
    groups = defaultdict(set)
    for c, (o, _) in planted.items():
        groups[o] |= {o, c}
    truth = pairs([sorted(g) for g in groups.values()])
    print(
        f"synthetic ({len(rows)} docs, {len(planted)} copies at edit rates {RATES}, "
        f"{len(truth)} true pairs):"
    )
    for name, fn in (
        ("l3-data", ours),
        ("datatrove", datatrove),
        ("l3-data 3-gram 20x5 (not the default)", ours_wide),
    ):
        t0 = time.perf_counter()
        found = pairs(fn(rows))
        dt = time.perf_counter() - t0
        per_rate = {}
        for rate in RATES:
            copies = [(c, o) for c, (o, r) in planted.items() if r == rate]
            per_rate[rate] = round(sum(tuple(sorted(p)) in found for p in copies) / len(copies), 3)
        print(
            f"  {name}: {pr(found, truth)}; recall of copy-original pairs by edit rate "
            f"{per_rate}; {dt:.1f} s"
        )


if __name__ == "__main__":
    main()
