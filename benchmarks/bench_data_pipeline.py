"""Throughput of the same filter + near-dedup pipeline, l3-data against datatrove, on the same
synthetic input in the same run (2 worker processes each), with dedup recall and precision.

Pipeline: Gopher quality -> Gopher repetition -> MinHash (l3-data: its defaults, 3-grams 20x5 with
exact Jaccard; datatrove: its defaults, 5-grams 14x8) ->
write JSONL. datatrove runs its documented 4-stage MinHash recipe (signatures, buckets,
clusters, filter); its stage 1 writes the filtered documents that stage 4 reads, so neither
side filters twice. ``--repeats`` runs the two interleaved (ours, theirs, ours, ...) and
reports each run and the median ratio, so load from other jobs falls on both.

    python benchmarks/bench_data_pipeline.py [--docs 20000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _data_synth import corpus, write_shards

from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline


def _ids(folder: Path) -> set[str]:
    out = set()
    for p in folder.rglob("*.jsonl*"):
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt") as f:
            out |= {json.loads(x)["id"] for x in f}
    return out


def run_ours(inp: Path, work: Path, workers: int) -> tuple[float, set[str], set[str]]:
    pipe = Pipeline.from_dict(
        {
            "pipeline": {"workdir": str(work / "w"), "workers": workers, "chunk_size": 5000},
            "input": {"paths": [str(inp / "*.jsonl")]},
            "steps": [
                {"type": "gopher_quality"},
                {"type": "gopher_repetition"},
                {"type": "minhash_dedup"},  # its defaults: 3-grams, 20x5, exact Jaccard
                {"type": "write_jsonl", "output": str(work / "out")},
            ],
        }
    )
    t0 = time.perf_counter()
    run_pipeline(pipe, progress=False)
    dt = time.perf_counter() - t0
    passed = set()
    for p in (work / "w" / "data" / "s0").glob("*.jsonl.zst"):
        import zstandard

        with zstandard.open(p, "rt") as f:
            passed |= {json.loads(x)["id"] for x in f}
    return dt, passed, _ids(work / "out")


def run_datatrove(
    inp: Path, work: Path, workers: int, n_files: int
) -> tuple[float, set[str], set[str]]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    w = str(work)
    s1 = LocalPipelineExecutor(
        [
            JsonlReader(str(inp), glob_pattern="*.jsonl"),
            GopherQualityFilter(),
            GopherRepetitionFilter(),
            JsonlWriter(f"{w}/filtered"),
            MinhashDedupSignature(f"{w}/sigs", config=cfg),
        ],
        tasks=n_files,
        workers=workers,
        logging_dir=f"{w}/logs1",
    )
    s2 = LocalPipelineExecutor(
        [MinhashDedupBuckets(f"{w}/sigs", f"{w}/buckets", config=cfg)],
        tasks=cfg.num_buckets,
        workers=workers,
        logging_dir=f"{w}/logs2",
    )
    s3 = LocalPipelineExecutor(
        [MinhashDedupCluster(f"{w}/buckets", f"{w}/remove", config=cfg)],
        tasks=1,
        workers=1,
        logging_dir=f"{w}/logs3",
    )
    s4 = LocalPipelineExecutor(
        [JsonlReader(f"{w}/filtered"), MinhashDedupFilter(f"{w}/remove"), JsonlWriter(f"{w}/out")],
        tasks=n_files,
        workers=workers,
        logging_dir=f"{w}/logs4",
    )
    t0 = time.perf_counter()
    for stage in (s1, s2, s3, s4):
        stage.run()
    dt = time.perf_counter() - t0
    return dt, _ids(work / "filtered"), _ids(work / "out")


def dedup_quality(passed: set[str], kept: set[str], truth: dict) -> dict:
    """Recall: planted copies (whose original also passed the filters) that were removed.
    Precision: removed documents that are planted copies or originals of a removed copy's
    cluster (removing an original and keeping its copy is also correct)."""
    removed = passed - kept
    planted = {c for c, (o, _) in truth.items() if c in passed and o in passed}
    caught = sum(1 for c in planted if c in removed or truth[c][0] in removed)
    group = {}
    for c, (o, _) in truth.items():
        group.setdefault(o, set()).update({o, c})
    ok = sum(1 for r in removed if r in truth or r in group)
    return {
        "recall": caught / max(1, len(planted)),
        "precision": ok / max(1, len(removed)),
        "removed": len(removed),
        "false_removals": len(removed) - ok,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    rows, truth = corpus(
        args.docs, dup_fraction=0.1, rates=(0.0, 0.01, 0.03, 0.05), junk_fraction=0.05
    )
    tmp = Path(tempfile.mkdtemp(prefix="bench_data_"))
    try:
        inp = tmp / "in"
        write_shards(rows, inp, n_files=4)
        mb = sum(p.stat().st_size for p in inp.iterdir()) / 1e6
        ratios = []
        for k in range(args.repeats):
            ours_t, ours_pass, ours_kept = run_ours(inp, tmp / f"ours{k}", args.workers)
            peer_t, peer_pass, peer_kept = run_datatrove(inp, tmp / f"dt{k}", args.workers, 4)
            q_ours = dedup_quality(ours_pass, ours_kept, truth)
            q_peer = dedup_quality(peer_pass, peer_kept, truth)
            ratios.append(peer_t / ours_t)
            if k == 0:
                print(
                    f"input: {len(rows)} documents, {mb:.1f} MB, {len(truth)} planted "
                    f"near-duplicates (edit rates 0-5%), 5% junk, {args.workers} workers"
                )
                print(f"passed filters: l3-data {len(ours_pass)}, datatrove {len(peer_pass)}")
            print(f"run {k + 1}:")
            print(f"  l3-data:   {ours_t:7.2f} s  {len(rows) / ours_t:8.0f} docs/s  dedup {q_ours}")
            print(f"  datatrove: {peer_t:7.2f} s  {len(rows) / peer_t:8.0f} docs/s  dedup {q_peer}")
            print(f"  ratio (l3-data / datatrove docs/s): {ratios[-1]:.2f}x", flush=True)
        print(f"median ratio over {args.repeats} run(s): {statistics.median(ratios):.2f}x")
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"max worker RSS: {rss:.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
