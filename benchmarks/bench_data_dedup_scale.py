"""Line dedup and MinHash dedup at scale: a bucket of ``--docs`` synthetic documents (1M by
default) through ``line_dedup`` (one bucket holds them all) and ``minhash_dedup`` with their
hash-partitioned reduces, on the local (or Ray) executor. Measured: docs/s, the peak resident
memory of each worker process (getrusage of the joined workers; each reduce part's own peak,
from its marker), and from the per-part footprint the memory per worker a bucket of 30M
documents needs.

Documents are short (two prose lines of about 15 words, and in half of them one of 3,000
boilerplate lines drawn Zipf-like, so that hundreds are seen more than 6 times); 3% are copies
of a recent document with one word changed (planted near-duplicates). They are generated
streaming into ``--files`` JSONL files.

    python benchmarks/bench_data_dedup_scale.py [--docs 1000000] [--workers 2] [--partitions 16]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _data_synth import prose

from l3_data.executors import run_pipeline
from l3_data.pipeline import Pipeline

BUCKET_30M = 30_000_000


def generate(folder: Path, n_docs: int, n_files: int, seed: int) -> int:
    """Write the corpus; return the number of planted near-duplicates."""
    rng = random.Random(seed)
    boiler = [f"Share this: {prose(rng, 6)}" for _ in range(3000)]
    weights = [1 / (k + 1) for k in range(len(boiler))]
    recent: list[str] = []
    planted = 0
    files = [open(folder / f"part{f:02d}.jsonl", "w") for f in range(n_files)]  # noqa: SIM115
    try:
        for i in range(n_docs):
            if len(recent) > 100 and rng.random() < 0.03:
                words = rng.choice(recent).split(" ")
                k = rng.randrange(len(words))
                words[k] = f"x{rng.randrange(10**9)}"
                text = " ".join(words)
                planted += 1
            else:
                text = prose(rng, 15) + "\n" + prose(rng, 15)
                if rng.random() < 0.5:
                    text += "\n" + rng.choices(boiler, weights)[0]
                recent.append(text)
                if len(recent) > 1000:
                    recent.pop(0)
            files[i * n_files // n_docs].write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    finally:
        for f in files:
            f.close()
    return planted


def parts(workdir: Path, seg: int) -> list[dict]:
    return [
        json.loads(p.read_text())
        for p in sorted((workdir / "markers" / f"reduce{seg}").glob("p*.json"))
    ]


def per_worker_at_30m(part_figures: list[dict], n_docs: int, partitions: int) -> dict:
    """Extrapolate a part's peak to a bucket of 30M documents: the part with the largest
    growth above its start gives bytes per row; rows scale with documents; add the worker's
    resident memory before the part."""
    rows = [p.get("rows", p.get("entries", 0)) for p in part_figures]
    growth = [max(p["rss_peak_mib"] - p["rss_start_mib"], 0.0) for p in part_figures]
    k = max(range(len(rows)), key=growth.__getitem__)
    bytes_per_row = growth[k] * 2**20 / max(rows[k], 1)
    rows_30m = sum(rows) / n_docs * BUCKET_30M / partitions
    base = max(p["rss_start_mib"] for p in part_figures)
    return {
        "rows_per_doc": round(sum(rows) / n_docs, 2),
        "bytes_per_row": round(bytes_per_row, 1),
        "worker_base_mib": base,
        "largest_part_peak_mib": max(p["rss_peak_mib"] for p in part_figures),
        "gib_per_worker_30m": round((base * 2**20 + rows_30m * bytes_per_row) / 2**30, 2),
    }


def main() -> None:
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        # glibc returns a freed large array to the system only when it was mmap'ed; a fixed
        # threshold makes each reduce part's peak its own, not what an earlier part left.
        os.environ["MALLOC_MMAP_THRESHOLD_"] = str(1 << 20)
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--chunk-size", type=int, default=10_000)
    ap.add_argument("--executor", default="local", choices=("local", "ray"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="l3_dedup_scale_"))
    try:
        (tmp / "in").mkdir()
        t0 = time.perf_counter()
        planted = generate(tmp / "in", args.docs, args.files, args.seed)
        size = sum(p.stat().st_size for p in (tmp / "in").iterdir())
        print(
            f"generated {args.docs:,} docs ({size / 2**20:.0f} MiB, {planted:,} near-dup copies)"
            f" in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        work = tmp / "work"
        pipe = Pipeline.from_dict(
            {
                "pipeline": {
                    "workdir": str(work),
                    "workers": args.workers,
                    "chunk_size": args.chunk_size,
                    "executor": args.executor,
                },
                "input": {"paths": [str(tmp / "in" / "*.jsonl")]},
                "steps": [
                    {"type": "line_dedup", "partitions": args.partitions},  # one 30M bucket
                    {"type": "minhash_dedup", "partitions": args.partitions},
                ],
            }
        )
        t0 = time.perf_counter()
        report = run_pipeline(pipe, progress=False)
        wall = time.perf_counter() - t0
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        line, mh = report["global"]["01.line_dedup"], report["global"]["02.minhash_dedup"]
        out = {
            "docs": args.docs,
            "input_mib": round(size / 2**20),
            "workers": args.workers,
            "executor": args.executor,
            "partitions": args.partitions,
            "chunk_size": args.chunk_size,
            "wall_s": round(wall, 1),
            "docs_per_s": round(args.docs / wall),
            "line_dedup": {
                "frequent_lines": line["frequent_lines"],
                "lines_removed": report["steps"]["01.line_dedup"].get("lines_removed", 0),
                "parts_s": line["partition_time_s"],
                "merge_s": line["time_s"],
                **per_worker_at_30m(parts(work, 0), args.docs, args.partitions),
            },
            "minhash_dedup": {
                "planted_copies": planted,
                "duplicates_removed": mh["duplicates"],
                "candidate_pairs": mh["candidate_pairs"],
                "parts_s": mh["partition_time_s"],
                "merge_s": mh["time_s"],
                **per_worker_at_30m(parts(work, 1), args.docs, args.partitions),
            },
            # Ray's workers are not this process's children: there, the parts' markers say
            "peak_rss_worker_mib": round(children) if args.executor == "local" else None,
            "peak_rss_driver_mib": round(driver),
        }
        print(json.dumps(out, indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
