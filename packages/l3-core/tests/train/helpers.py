"""Shared set-up for the trainer tests: a small synthetic token-shard corpus and configs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from l3_core.config import from_dict
from l3_core.shards import write_manifest, write_shard
from l3_core.train.config import RunConfig

VOCAB = 512


def make_shards(directory: Path, n_docs: int = 120, seed: int = 0) -> Path:
    """Two sources of documents of 5..300 tokens with learnable structure (repeated motifs)."""
    rng = np.random.default_rng(seed)
    docs = []
    for i in range(n_docs):
        motif = rng.integers(0, VOCAB, size=rng.integers(3, 12))
        n = int(rng.integers(5, 300))
        ids = np.resize(motif, n)
        noise = rng.random(n) < 0.1
        ids[noise] = rng.integers(0, VOCAB, size=int(noise.sum()))
        docs.append((ids, "web" if i % 3 else "code"))
    half = n_docs // 2
    write_shard(directory, "part-0", docs[:half], vocab_size=VOCAB, tokenizer="test-tok")
    write_shard(directory, "part-1", docs[half:], vocab_size=VOCAB, tokenizer="test-tok")
    write_manifest(directory)
    return directory


def config(data: Path, run_dir: Path, **sections) -> RunConfig:
    """A tiny fp32 run on ``data``; ``sections`` override tables, e.g. parallel={"tp": 2}."""
    base = {
        "run_dir": str(run_dir),
        "model": {"preset": "llama3-tiny", "n_layers": 4},
        "data": {"path": str(data), "seq_len": 64, "val_fraction": 0.05},
        "train": {"max_steps": 3, "seed": 1, "global_batch_size": 8, "micro_batch_size": 2,
                  "eval_every": 3, "eval_batches": 1},
        "optimizer": {"lr": 3e-3},
        "schedule": {"warmup_steps": 1},
        "checkpoint": {"every": 0, "keep_last": 2},
        "logging": {"tensorboard": False, "progress": False, "plot": False},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            base.setdefault(key, {}).update(value)
        else:
            base[key] = value
    return from_dict(RunConfig, base)


def losses(records) -> list[float]:
    assert not isinstance(records, dict), records.get("error")
    return [r["loss"] for r in records]


def read_results(path: Path) -> dict:
    return json.loads(path.read_text())
