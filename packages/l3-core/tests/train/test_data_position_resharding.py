"""The data position survives a change of data-parallel size: a run checkpointed at DP=2 and
resumed at DP=1 trains on exactly the rows the DP=2 run went on to train on, none skipped and
none repeated (rows identified by a hash of their tokens, recorded by every rank)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch

from l3_core.parallel.groups import shutdown
from l3_core.parallel.launch import spawn
from l3_core.train.testing import as_dict, config, make_shards, recorded_rows, run_configs

STEPS, SAVED_AT = 4, 2
GBS, MBS = 8, 2


def _cfg(corpus, run_dir):
    return config(
        corpus,
        run_dir,
        model={"preset": "llama3-tiny", "n_layers": 2},
        train={
            "max_steps": STEPS,
            "global_batch_size": GBS,
            "micro_batch_size": MBS,
            "eval_every": 0,
            "objective": "test-record-rows",
        },
        checkpoint={"every": SAVED_AT, "keep_last": 3},
    )


def _per_step(rows_of_ranks: list[list[list[str]]], dp: int) -> list[Counter]:
    """The rows of each step, over all ranks (each rank records GBS / dp rows a step)."""
    per_rank = GBS // (MBS * dp)  # micro-batches a rank runs per step
    steps = len(rows_of_ranks[0]) // per_rank
    return [
        Counter(
            row
            for rank in rows_of_ranks
            for micro in rank[s * per_rank : (s + 1) * per_rank]
            for row in micro
        )
        for s in range(steps)
    ]


def test_a_run_resumed_at_another_dp_size_sees_no_row_skipped_or_repeated(tmp_path):
    corpus = make_shards(tmp_path / "data", n_docs=60)
    ref_dir = tmp_path / "dp2"
    spawn(
        2,
        run_configs,
        [as_dict(_cfg(corpus, ref_dir), "dp2", "test-record-rows")],
        str(tmp_path / "out.json"),
    )
    ref = _per_step(recorded_rows(ref_dir), dp=2)
    assert len(ref) == STEPS and all(sum(c.values()) == GBS for c in ref)
    every = sum(ref, Counter())
    assert max(every.values()) == 1  # the reference itself repeats no row

    resumed_dir = tmp_path / "dp1"
    step = f"step_{SAVED_AT:08d}"
    shutil.copytree(ref_dir / "checkpoints" / step, resumed_dir / "checkpoints" / step)
    (resumed_dir / "checkpoints" / "latest").write_text(step + "\n")
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    try:
        with Trainer(_cfg(corpus, resumed_dir)) as trainer:
            records = trainer.run()
    finally:
        shutdown()
    assert [r["step"] for r in records] == [3, 4]
    resumed = _per_step(recorded_rows(resumed_dir), dp=1)
    assert resumed == ref[SAVED_AT:]  # the same rows at each step, each once
