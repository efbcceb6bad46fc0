"""Main-job stage for l3-data: a small real pipeline over the Python standard library's own
source files (text folders) to l3-core token shards, with the official Llama 3 tokenizer."""

from __future__ import annotations

import pathlib
import sysconfig
import time

STDLIB_PACKAGES = ("json", "email", "http", "urllib", "xml", "logging", "importlib", "asyncio")


def run(workdir: pathlib.Path) -> dict:
    from l3_core.shards import ShardDataset
    from l3_data.executors import run_pipeline
    from l3_data.pipeline import Pipeline

    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    folders = [str(stdlib / p) for p in STDLIB_PACKAGES if (stdlib / p).is_dir()]
    shards = workdir / "data_shards"
    pipe = Pipeline.from_dict(
        {
            "pipeline": {"workdir": str(workdir / "data_work"), "workers": 2, "chunk_size": 100},
            "input": {"format": "text", "paths": folders, "extensions": [".py"]},
            "steps": [
                {"type": "length_filter", "min_chars": 200},
                {"type": "exact_dedup"},
                {"type": "minhash_dedup"},
                {"type": "line_dedup", "bucket_size": 1000, "max_count": 6},
                {"type": "tokenize", "output": str(shards), "tokenizer": "llama3"},
            ],
        }
    )
    t0 = time.perf_counter()
    report = run_pipeline(pipe, restart=True, progress=False)
    seconds = time.perf_counter() - t0
    ds = ShardDataset(shards)
    return {
        "documents_in": report["documents_in"],
        "documents_out": report["documents_out"],
        "rejected": report["rejected_total"],
        "exact_duplicates": report["global"]["02.exact_dedup"]["duplicates"],
        "near_duplicates": report["global"]["03.minhash_dedup"]["duplicates"],
        "frequent_lines_removed": report["steps"]["04.line_dedup"].get("lines_removed", 0),
        "shards": len(ds.shards),
        "tokens": ds.n_tokens,
        "seconds": round(seconds, 1),
    }
