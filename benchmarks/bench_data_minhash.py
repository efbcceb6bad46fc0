"""MinHash signatures per second (l3-data's numpy-vectorised hasher against datatrove's
per-document signature code, same 5-gram shingles and 112 hash functions, one process), and
the memory of clustering per million documents (measured in a child process).

    python benchmarks/bench_data_minhash.py [--docs 5000] [--cluster-docs 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _data_synth import corpus

from l3_data.steps.minhash import MinHasher


def ours(texts: list[str]) -> float:
    h = MinHasher(num_perm=112, ngram=5)
    h.signatures(texts[:200])  # warm the word-hash cache as a long run would
    t0 = time.perf_counter()
    h.signatures(texts)
    return len(texts) / (time.perf_counter() - t0)


def datatrove(texts: list[str]) -> float:
    import tempfile

    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    sig = MinhashDedupSignature(
        tempfile.mkdtemp(), config=MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    )
    for t in texts[:200]:
        sig.get_signature(sig.get_shingles(t))
    t0 = time.perf_counter()
    for t in texts:
        sig.get_signature(sig.get_shingles(t))
    return len(texts) / (time.perf_counter() - t0)


CHILD = """
import resource, sys, time, tracemalloc, numpy as np
from l3_data.steps.minhash import cluster, first_of_cluster
n = int(sys.argv[1])
rng = np.random.default_rng(0)
sig = rng.integers(0, 2**32, size=(n, 112), dtype=np.uint32)
dup = rng.choice(n, n // 10, replace=False)
src = rng.choice(n, n // 10)
sig[dup] = sig[src]
sig[dup[: n // 20], :20] = rng.integers(0, 2**32, size=(n // 20, 20), dtype=np.uint32)
tracemalloc.start()
t0 = time.perf_counter()
labels = cluster(sig, 14, 8, 0.5)
keep = first_of_cluster(labels)
dt = time.perf_counter() - t0
extra = tracemalloc.get_traced_memory()[1]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(n, dt, sig.nbytes, extra, peak, n - int(keep.sum()))
"""


def cluster_memory(n: int) -> dict:
    """Signatures of ``n`` documents (10% planted duplicates) clustered in a child process;
    memory = the signatures plus the peak of what clustering allocates (tracemalloc)."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True
    ).stdout.split()
    n, dt = int(out[0]), float(out[1])
    sig, extra, peak, removed = (int(x) for x in out[2:])
    mib = 2**20
    return {
        "docs": n,
        "seconds": round(dt, 1),
        "signatures_MiB": round(sig / mib),
        "clustering_peak_extra_MiB": round(extra / mib),
        "MiB_per_million_docs": round((sig + extra) / mib * 1e6 / n),
        "process_peak_rss_MiB": round(peak / mib),
        "removed": removed,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--cluster-docs", type=int, default=1_000_000)
    args = ap.parse_args()
    rows, _ = corpus(args.docs, dup_fraction=0.0, rates=(0.0,), seed=1)
    texts = [r["text"] for r in rows]
    words = sum(len(t.split()) for t in texts) / len(texts)
    a, b = ours(texts), datatrove(texts)
    print(f"documents: {len(texts)} of {words:.0f} words on average; 112 hashes, 5-gram shingles")
    print(f"l3-data signatures/s:   {a:8.0f}")
    print(f"datatrove signatures/s: {b:8.0f}")
    print(f"ratio: {a / b:.2f}x")
    mem = cluster_memory(args.cluster_docs)
    print("clustering (LSH 14x8 + verification + connected components):", json.dumps(mem))
    print(
        f"memory of dedup: {mem['MiB_per_million_docs']} MiB per million documents "
        f"(signatures {mem['signatures_MiB'] * 1e6 / mem['docs']:.0f} MiB + clustering peak "
        f"{mem['clustering_peak_extra_MiB'] * 1e6 / mem['docs']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
