"""Activation checkpointing changes no number; bf16 stays close to fp32; a training
checkpoint is a model checkpoint that ``l3_core.load_checkpoint`` reads."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch

from l3_core.parallel.groups import shutdown
from l3_core.train.testing import config, make_shards


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("modes")
    data = make_shards(root / "data")
    out = {}
    for name, train in [
        ("fp32", {}),
        ("recompute", {"activation_checkpointing": True}),
        ("bf16", {"precision": "bf16"}),
    ]:
        try:
            with Trainer(config(data, root / name, train={"max_steps": 3, **train})) as t:
                out[name] = t.run()
        finally:
            shutdown()
    return out, root


def test_activation_checkpointing_gives_the_same_losses(runs):
    out, _ = runs
    assert [r["loss"] for r in out["recompute"]] == pytest.approx(
        [r["loss"] for r in out["fp32"]], abs=1e-6
    )


def test_bf16_training_stays_close_to_fp32(runs):
    out, _ = runs
    assert [r["loss"] for r in out["bf16"]] == pytest.approx(
        [r["loss"] for r in out["fp32"]], abs=0.02
    )


def test_training_checkpoint_loads_as_a_plain_model_with_the_same_val_loss(runs):
    import torch.nn.functional as F

    from l3_core import load_checkpoint
    from l3_core.shards import ShardDataset
    from l3_core.train.data import PackedStream

    out, root = runs
    model = load_checkpoint(root / "fp32" / "checkpoints" / "step_00000003")
    cfg = config(root / "data", root / "unused")
    stream = PackedStream(ShardDataset(root / "data"), 0, {}, cfg.data.val_fraction)
    rows = stream.validation_rows(
        cfg.train.global_batch_size * cfg.train.eval_batches, cfg.data.seq_len
    )
    with torch.no_grad():
        logits = model(torch.from_numpy(rows.tokens), torch.from_numpy(rows.doc_ids))
        ce = F.cross_entropy(
            logits.flatten(0, 1), torch.from_numpy(rows.labels).flatten(), reduction="none"
        )
    mask = torch.from_numpy(rows.loss_mask).flatten()
    val = float((ce * mask).sum() / mask.sum())
    assert val == pytest.approx(out["fp32"][-1]["val_loss"], abs=1e-5)
    assert np.isfinite(val)


def test_fused_swiglu_gives_the_same_losses(runs):
    from l3_core.train.loop import Trainer

    out, root = runs
    try:
        with Trainer(
            config(root / "data", root / "fused", train={"max_steps": 3, "fused_swiglu": True})
        ) as t:
            fused = t.run()
    finally:
        shutdown()
    assert [r["loss"] for r in fused] == pytest.approx([r["loss"] for r in out["fp32"]], abs=1e-6)
    assert [r["grad_norm"] for r in fused] == pytest.approx(
        [r["grad_norm"] for r in out["fp32"]], abs=1e-6
    )
