"""Long-context stages: the needle rows, and the figures logged at the end of each stage."""

from __future__ import annotations

import numpy as np
import pytest

from l3_core.train.long_context import KEY_LEN, VALUE_LEN, needle_rows


def test_needle_is_hidden_at_increasing_depths_and_asked_at_the_end():
    hay = np.full((3, 101), 7)
    batch, values = needle_rows(hay, vocab_size=500, seed=0)
    n = KEY_LEN + VALUE_LEN
    full = np.concatenate([batch.tokens, batch.labels[:, -1:]], axis=1)
    starts = []
    for i in range(3):
        needle = full[i, -n:]
        assert np.array_equal(needle[KEY_LEN:], values[i])
        hits = [j for j in range(101 - 2 * n + 1) if np.array_equal(full[i, j : j + n], needle)]
        assert len(hits) == 1
        starts.append(hits[0])
    assert starts == sorted(starts) and starts[0] < starts[-1]
    # only the final value tokens are scored, and they are the labels there
    assert batch.loss_mask.sum(axis=1).tolist() == [VALUE_LEN] * 3
    assert np.array_equal(batch.labels[:, -VALUE_LEN:], values)
    assert (batch.positions == np.arange(100)).all()  # one document per row


def test_stage_ends_log_needle_and_short_context_figures(tmp_path):
    pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")
    import torch

    from l3_core.parallel.groups import shutdown
    from l3_core.train.loop import Trainer
    from l3_core.train.testing import config, make_shards

    torch.set_num_threads(1)
    data = make_shards(tmp_path / "data")
    cfg = config(
        data,
        tmp_path / "run",
        train={"max_steps": 2, "eval_every": 2},
        long_context={
            "stages": [{"seq_len": 128, "steps": 1}, {"seq_len": 256, "steps": 2}],
            "needle_trials": 4,
        },
    )
    try:
        with Trainer(cfg) as trainer:
            records = trainer.run()
    finally:
        shutdown()
    assert [r["seq_len"] for r in records] == [64, 64, 128, 256, 256]
    ends = [r for r in records if "needle_recall" in r]
    assert [r["step"] for r in ends] == [3, 5]
    assert [r["stage_seq_len"] for r in ends] == [128, 256]
    for r in ends:
        assert 0.0 <= r["needle_recall"] <= 1.0
        assert r["needle_nll"] > 0 and r["short_val_loss"] > 0 and r["long_val_loss"] > 0
    assert "val_loss" in records[-1]
