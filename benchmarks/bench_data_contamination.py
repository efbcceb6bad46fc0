"""Contamination analysis speed and memory: building the 8-gram index of a synthetic corpus
(documents/s), scoring a benchmark against it (examples/s), and the peak RSS of each phase's
process, with the labels checked against what was planted.

The corpus is English-looking prose; the benchmark has three kinds of examples: copied whole
from a corpus document (expected contamination 1.0), half copied (about 0.5) and fresh prose
(0.0). Each phase runs in a fresh process so that its peak RSS is its own (the tokenizer and
imports included).

Peer: datatrove's n-gram decontamination (``datatrove.pipeline.decont``), if installed. It
works in the other direction (it indexes the benchmark's word n-grams and filters corpus
documents that contain one) and its indexer needs lighteval, so the benchmark's hashes are
written with datatrove's own tokenizer and hash function and its filter is timed over the same
corpus: one pass over the corpus each, not the same answer (it labels corpus documents, we
measure each example's token coverage).

    python benchmarks/bench_data_contamination.py [--docs 50000] [--bench 3000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _data_synth import COMMON


def _vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    # letters only: datatrove's text normalisation maps digits to one symbol, and words such
    # as "word123" would all look alike to it
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size)]


def prose(rng: random.Random, n_words: int, vocab: list[str]) -> str:
    return " ".join(rng.choice(COMMON) if rng.random() < 0.4 else rng.choice(vocab)
                    for _ in range(n_words))  # fmt: skip


def _write_data(root: Path, docs: int, words: int, bench: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = _vocabulary(rng)
    texts = [prose(rng, words, vocab) for _ in range(docs)]
    with (root / "corpus.jsonl").open("w") as f:
        for t in texts:
            f.write(json.dumps({"text": t}) + "\n")
    kinds = []
    with (root / "bench.jsonl").open("w") as f:
        for i in range(bench):
            kind = ("copied", "half", "fresh")[i % 3]
            src = texts[rng.randrange(docs)].split()
            lo = rng.randrange(max(1, len(src) - 60))
            if kind == "copied":
                text = " ".join(src[lo : lo + 60])
            elif kind == "half":
                text = prose(rng, 30, vocab) + " " + " ".join(src[lo : lo + 30])
            else:
                text = prose(rng, 60, vocab)
            f.write(json.dumps({"id": i, "text": text}) + "\n")
            kinds.append(kind)
    return kinds


def _peak_rss_mib() -> float:
    """This process's peak RSS since it started its program (VmHWM). Not ``ru_maxrss``: Linux
    carries that across exec, so a spawned child would report its parent's peak at the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline() -> dict[str, Any]:
    import l3_data.contamination.index  # noqa: F401  (what a merge worker imports)

    return {"rss_mib": _peak_rss_mib()}


def _ours_stream(root: str, partitions: int, chunk_size: int) -> dict[str, Any]:
    """The streaming pass alone, leaving its runs for :func:`_ours_merge`."""
    from l3_data.contamination.corpus import Corpus
    from l3_data.contamination.index import IndexSpec, _stream_runs
    from l3_data.steps.tokenize import load_tokenizer

    r = Path(root)
    tok = load_tokenizer("llama3")
    spec = IndexSpec(n=8, partitions=partitions, tokenizer=tok.fingerprint(), corpus="bench")
    record = _stream_runs(r / "runs_index", Corpus(r / "corpus.jsonl", tok).documents(), spec,
                          chunk_size, None)  # fmt: skip
    return {"rss_mib": _peak_rss_mib(), "runs": record["runs"]}


def _ours_merge(root: str, partitions: int, runs: int) -> dict[str, Any]:
    """One merge worker's job: the largest partition."""
    import numpy as np

    from l3_data.contamination.index import _merge_partition, _run_path

    r = Path(root) / "runs_index"
    sizes = [sum(np.load(_run_path(r, p, k), mmap_mode="r").size for k in range(runs))
             for p in range(partitions)]  # fmt: skip
    largest = int(np.argmax(sizes))
    before = _peak_rss_mib()
    merged = _merge_partition(r, largest, runs)
    return {"rss_mib": _peak_rss_mib(), "before_mib": before, "run_hashes": sizes[largest],
            "merged": merged}  # fmt: skip


def _ours_build(root: str, partitions: int, chunk_size: int, workers: int) -> dict[str, Any]:
    from l3_data.contamination.run import ContaminationJob, open_or_build_index
    from l3_data.steps.tokenize import load_tokenizer

    r = Path(root)
    job = ContaminationJob(corpus=r / "corpus.jsonl", bench=r / "bench.jsonl", out=r / "o.jsonl",
                           index=r / "index", partitions=partitions, chunk_size=chunk_size,
                           workers=workers, rebuild=True)  # fmt: skip
    tok = load_tokenizer("llama3")
    t0 = time.perf_counter()
    index = open_or_build_index(job, tok)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_mib": _peak_rss_mib(), "distinct": len(index),
            "largest_partition": index.record["largest_partition"]}  # fmt: skip


def _ours_query(root: str) -> dict[str, Any]:
    from l3_data.contamination.index import NgramIndex
    from l3_data.contamination.query import read_bench, score_examples
    from l3_data.steps.tokenize import load_tokenizer

    r = Path(root)
    tok = load_tokenizer("llama3")
    t0 = time.perf_counter()
    examples = list(read_bench(r / "bench.jsonl", tok))
    rows = list(score_examples(NgramIndex(r / "index"), examples, 0.5))
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_mib": _peak_rss_mib(), "rows": rows}


def _peer_filter(root: str, n: int) -> dict[str, Any]:
    import numpy as np
    from datatrove.data import Document
    from datatrove.pipeline.decont import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.text import ngrams, simplify_text
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    r = Path(root)
    config = NGramsDecontConfig(n_grams=n)
    words = load_word_tokenizer("en")
    hash_func = create_hash_func(config.hash_config)
    hashes: set[int] = set()
    for line in (r / "bench.jsonl").open():
        toks = words.word_tokenize(simplify_text(json.loads(line)["text"], config.norm_config))
        hashes.update(hash_func(" ".join(g)) for g in ngrams(toks, n))
    (r / "dt_index").mkdir(exist_ok=True)
    np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(
        r / "dt_index" / "bench.index.hashes"
    )
    filt = NGramsDecontFilter(str(r / "dt_index"), config=config, language="en")
    t0 = time.perf_counter()
    flagged = 0
    with (r / "corpus.jsonl").open() as f:
        for i, line in enumerate(f):
            doc = Document(text=json.loads(line)["text"], id=str(i))
            flagged += filt.filter(doc) is not True
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_mib": _peak_rss_mib(), "flagged": flagged}


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    # a fresh process per phase (not a daemonic pool worker: the merge starts its own)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=50_000)
    ap.add_argument("--words", type=int, default=150)
    ap.add_argument("--bench", type=int, default=3000)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--chunk-size", type=int, default=1 << 20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        import datatrove.pipeline.decont  # noqa: F401

        have_peer = True
    except ImportError:
        have_peer = False
        print("peer: datatrove is not installed (pip install 'l3-data[bench]'): ours only")
    with tempfile.TemporaryDirectory() as tmp:
        kinds = _write_data(Path(tmp), args.docs, args.words, args.bench, args.seed)
        mb = (Path(tmp) / "corpus.jsonl").stat().st_size / 1e6
        print(f"corpus: {args.docs} documents, {mb:.1f} MB; benchmark: {args.bench} examples")
        builds, peers = [], []
        for _ in range(args.repeats):  # interleaved, so other jobs' load falls on both
            builds.append(
                _in_child(_ours_build, tmp, args.partitions, args.chunk_size, args.workers)
            )
            if have_peer:
                peers.append(_in_child(_peer_filter, tmp, 8))
        query = _in_child(_ours_query, tmp)
        base = _in_child(_baseline)
        stream = _in_child(_ours_stream, tmp, args.partitions, args.chunk_size)
        merge = _in_child(_ours_merge, tmp, args.partitions, stream["runs"])
    build = min(builds, key=lambda b: b["seconds"])
    print(
        f"ours build: {args.docs / build['seconds']:,.0f} docs/s ({build['seconds']:.1f} s, "
        f"{args.workers} merge workers), peak RSS of the building process "
        f"{build['rss_mib']:.0f} MiB; {build['distinct']:,} distinct 8-grams, largest of "
        f"{args.partitions} partitions {build['largest_partition']:,}"
    )
    print(
        f"  streaming pass alone: peak RSS {stream['rss_mib']:.0f} MiB (chunk {args.chunk_size:,} "
        f"hashes, {stream['runs']} chunks, tokenizer included); one merge worker (the largest "
        f"partition, {merge['run_hashes']:,} run hashes -> {merge['merged']:,}): peak RSS "
        f"{merge['rss_mib']:.0f} MiB, {merge['before_mib']:.0f} before the merge; interpreter "
        f"+ imports alone {base['rss_mib']:.0f} MiB"
    )
    print(
        f"ours query: {args.bench / query['seconds']:,.0f} examples/s "
        f"({query['seconds']:.2f} s, tokenizing included), peak RSS {query['rss_mib']:.0f} MiB"
    )
    if peers:
        peer = min(peers, key=lambda p: p["seconds"])
        print(
            f"datatrove decont filter: {args.docs / peer['seconds']:,.0f} docs/s "
            f"({peer['seconds']:.1f} s), peak RSS {peer['rss_mib']:.0f} MiB, "
            f"{peer['flagged']} corpus documents flagged; ratio (docs/s) "
            f"{peer['seconds'] / build['seconds']:.2f}x"
        )
    by_kind: dict[str, list[float]] = {}
    for kind, row in zip(kinds, query["rows"]):
        by_kind.setdefault(kind, []).append(row["contamination"])
    for kind, vals in by_kind.items():
        print(f"  {kind:>6}: mean contamination {sum(vals) / len(vals):.3f} (n={len(vals)})")


if __name__ == "__main__":
    main()
