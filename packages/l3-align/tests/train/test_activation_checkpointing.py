"""``train.activation_checkpointing`` recomputes layers in the backward pass: the same losses
and gradient norms as keeping the activations (fp32)."""

from __future__ import annotations

import pytest

pytest.importorskip("megatron.core", reason="needs l3-core's train extra (megatron-core)")

from l3_align.config import AlignConfig
from l3_align.rm.run import run_reward_training
from l3_core.config import from_dict
from l3_core.jsonl import read_jsonl


def test_checkpointed_layers_train_like_kept_activations(model_dir, pref_file, tmp_path):
    records = {}
    for on in (False, True):
        cfg = from_dict(
            AlignConfig,
            {"train": {"max_steps": 2, "lr": 3e-3, "batch_rows": 4, "micro_batch_rows": 4,
                       "activation_checkpointing": on}},
        )  # fmt: skip
        run_reward_training(cfg, model_dir, pref_file, tmp_path / str(on))
        records[on] = read_jsonl(tmp_path / str(on) / "metrics.jsonl")
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in records[True]] == pytest.approx(
            [r[key] for r in records[False]], abs=1e-6
        )
    assert records[True][0]["loss"] != records[True][1]["loss"]
