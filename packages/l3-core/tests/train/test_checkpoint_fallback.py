"""Resume after damage: a truncated newest checkpoint is skipped for the intact one before it
(same losses as the uninterrupted run), and temporaries of interrupted writes are removed at
start-up."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch

from l3_core.errors import CheckpointError
from l3_core.metrics_schema import read_metrics
from l3_core.parallel.groups import shutdown
from l3_core.train.testing import config, make_shards

STEPS = 6


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("corpus"))


def _cfg(corpus, run_dir):
    return config(
        corpus,
        run_dir,
        train={"max_steps": STEPS, "eval_every": 0},
        checkpoint={"every": 2, "keep_last": 3},
    )


def _train(cfg) -> list[dict]:
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    try:
        with Trainer(cfg) as trainer:
            return trainer.run()
    finally:
        shutdown()


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_newest_checkpoint_falls_back_to_the_one_before(corpus, tmp_path, caplog):
    run = tmp_path / "run"
    uninterrupted = _train(_cfg(corpus, run))
    checkpoints = run / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("step_*")) == [
        "step_00000002",
        "step_00000004",
        "step_00000006",
    ]
    _truncate(checkpoints / "step_00000006" / "model.safetensors")

    with caplog.at_level(logging.WARNING, logger="l3_core.train.checkpoint"):
        resumed = _train(_cfg(corpus, run))
    warning = next(r.getMessage() for r in caplog.records if "broken" in r.getMessage())
    assert "step_00000006" in warning and "model.safetensors" in warning and "bytes" in warning

    assert [r["step"] for r in resumed] == [5, 6]  # from step 4, the newest intact one
    for key in ("loss", "grad_norm", "lr"):
        assert [r[key] for r in resumed] == [r[key] for r in uninterrupted[4:]], key
    assert resumed[-1]["val_loss"] == uninterrupted[-1]["val_loss"]
    assert [r.step for r in read_metrics(run / "metrics.jsonl")] == list(range(1, STEPS + 1))
    # step 6 was written again, whole
    from l3_core.checkpoint.integrity import verify_files

    assert verify_files(checkpoints / "step_00000006")


def test_when_every_checkpoint_is_broken_resume_is_an_error_naming_them(corpus, tmp_path):
    run = tmp_path / "run"
    cfg = _cfg(corpus, run)
    cfg.train.max_steps, cfg.checkpoint.every = 2, 1
    _train(cfg)
    for step in ("step_00000001", "step_00000002"):
        _truncate(run / "checkpoints" / step / "optimizer.safetensors")
    with pytest.raises(CheckpointError, match="no intact checkpoint") as e:
        _train(cfg)
    assert "step_00000001" in str(e.value) and "step_00000002" in str(e.value)


def test_temporaries_left_by_a_killed_write_are_removed_at_start_up(corpus, tmp_path, caplog):
    from l3_core.train.loop import Trainer

    run = tmp_path / "run"
    stale_dir = run / "checkpoints" / ".step_00000004.k3j9.tmp"  # atomic_path's temporary
    (stale_dir / "step_00000004").mkdir(parents=True)
    (stale_dir / "step_00000004" / "model.safetensors").write_bytes(b"\0" * (1 << 20))
    stale_file = run / ".metrics.jsonl.a1b2.tmp"  # atomic_write's temporary
    stale_file.write_bytes(b'{"step": 1')
    kept = run / "notes.txt"
    kept.write_text("mine")
    try:
        with caplog.at_level(logging.WARNING, logger="l3_core.train.loop"):
            Trainer(_cfg(corpus, run)).close()
    finally:
        shutdown()
    assert not stale_dir.exists() and not stale_file.exists() and kept.exists()
    removed = [r.getMessage() for r in caplog.records if "interrupted write" in r.getMessage()]
    assert len(removed) == 2
