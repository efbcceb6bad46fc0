"""Per-rank distributed checkpoints (``checkpoint.format = "dcp"``): every rank writes its own
shards, and a checkpoint written under one layout resumes under another with the losses of the
uninterrupted run (fp32, gloo, two spawned ranks)."""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

import torch

from l3_core.parallel.groups import shutdown
from l3_core.parallel.launch import spawn
from l3_core.train.testing import as_dict, config, make_shards, run_configs

TOL = 1e-5
STEPS = 3
DCP = {"every": 2, "keep_last": 3, "format": "dcp"}
#: two-rank layouts (parallel sizes, checkpoint keys) that write a distributed checkpoint at step 2
SAVED = {
    "tp2": ({"tp": 2}, {}),
    "dp2": ({}, {}),
    "pp2": ({"pp": 2}, {}),
    "fsdp2": ({"fsdp": 2}, {}),
    "dp2_async": ({}, {"async_save": True}),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("corpus"))


def _train(cfg) -> list[dict]:
    from l3_core.train.loop import Trainer

    torch.set_num_threads(1)
    try:
        with Trainer(cfg) as trainer:
            return trainer.run()
    finally:
        shutdown()


@pytest.fixture(scope="module")
def single(corpus, tmp_path_factory):
    """The uninterrupted one-process run (plain format)."""
    return _train(config(corpus, tmp_path_factory.mktemp("single"), train={"max_steps": STEPS}))


@pytest.fixture(scope="module")
def world2(corpus, tmp_path_factory):
    """Each of SAVED trains 3 steps on two ranks, checkpointing in the dcp format at step 2."""
    root = tmp_path_factory.mktemp("world2")
    cfgs = [
        as_dict(
            config(
                corpus,
                root / name,
                parallel=p,
                train={"max_steps": STEPS},
                checkpoint={**DCP, **c},
            ),
            name,
        )
        for name, (p, c) in SAVED.items()
    ]
    spawn(2, run_configs, cfgs, str(root / "out.json"))
    return json.loads((root / "out.json").read_text()), root


def _copy_step2(src_run, dst_run) -> None:
    shutil.rmtree(dst_run / "checkpoints", ignore_errors=True)
    (dst_run / "checkpoints").mkdir(parents=True)
    shutil.copytree(
        src_run / "checkpoints" / "step_00000002", dst_run / "checkpoints" / "step_00000002"
    )
    (dst_run / "checkpoints" / "latest").write_text("step_00000002\n")


def _losses(records):
    assert not isinstance(records, dict), records["error"]
    return [r["loss"] for r in records]


@pytest.mark.parametrize("layout", SAVED)
def test_a_layout_that_writes_distributed_checkpoints_trains_as_one_process(layout, world2, single):
    results, _ = world2
    assert _losses(results[layout]) == pytest.approx(_losses(single), abs=TOL)


@pytest.mark.parametrize("layout", SAVED)
def test_every_rank_writes_its_own_shards_and_one_small_metadata_file(layout, world2):
    _, root = world2
    ckpt = root / layout / "checkpoints" / "step_00000002"
    shards = sorted(p.name for p in ckpt.glob("*.distcp"))
    assert shards == ["__0_0.distcp", "__1_0.distcp"]
    sizes = [(ckpt / s).stat().st_size for s in shards]
    # The two ranks share the writing: neither writes (nearly) everything.
    assert max(sizes) < 0.75 * sum(sizes)
    state = json.loads((ckpt / "trainer.json").read_text())
    assert state["format"] == "dcp" and state["step"] == 2
    assert not list((root / layout / "checkpoints").glob(".*"))  # no temporary left


@pytest.mark.parametrize("layout", SAVED)
def test_a_distributed_checkpoint_resumes_on_one_process_with_the_same_losses(
    layout, world2, single, corpus, tmp_path
):
    _, root = world2
    run = tmp_path / "resumed"
    _copy_step2(root / layout, run)
    records = _train(config(corpus, run, train={"max_steps": STEPS}))
    assert [r["step"] for r in records] == [3]
    assert records[0]["loss"] == pytest.approx(single[2]["loss"], abs=TOL)
    assert records[0]["grad_norm"] == pytest.approx(single[2]["grad_norm"], abs=TOL)
    # measured after step 3's update, so it needs the Adam moments restored too
    assert records[0]["val_loss"] == pytest.approx(single[2]["val_loss"], abs=TOL)


def test_a_tp2_checkpoint_resumes_at_dp2_with_the_same_losses(world2, single, corpus, tmp_path):
    _, root = world2
    run = tmp_path / "dp2"
    _copy_step2(root / "tp2", run)
    cfg = config(corpus, run, train={"max_steps": STEPS}, checkpoint=DCP)
    spawn(2, run_configs, [as_dict(cfg, "dp2")], str(tmp_path / "out.json"))
    records = json.loads((tmp_path / "out.json").read_text())["dp2"]
    assert [r["step"] for r in records] == [3]
    assert records[0]["loss"] == pytest.approx(single[2]["loss"], abs=TOL)
    assert records[0]["val_loss"] == pytest.approx(single[2]["val_loss"], abs=TOL)
    # and its own end-of-run checkpoint, written at DP=2, is complete
    assert (run / "checkpoints" / "latest").read_text() == "step_00000003\n"


@pytest.mark.parametrize("layout", ["tp2", "dp2_async"])
def test_the_blocked_time_of_a_save_is_logged_with_the_next_step(layout, world2):
    results, _ = world2
    blocked = [r.get("checkpoint_blocked_s") for r in results[layout]]
    assert blocked[0] is None and blocked[1] is None
    assert blocked[2] > 0


def test_async_save_needs_the_distributed_format(corpus, tmp_path):
    from l3_core.errors import ConfigError

    cfg = config(corpus, tmp_path, checkpoint={"async_save": True})
    with pytest.raises(ConfigError, match="checkpoint.async_save = true needs checkpoint.format"):
        _train(cfg)


def test_a_checkpoint_for_another_model_is_refused_naming_the_difference(world2, corpus, tmp_path):
    from l3_core.errors import CheckpointError

    _, root = world2
    run = tmp_path / "other"
    _copy_step2(root / "tp2", run)
    with pytest.raises(CheckpointError, match="n_layers: checkpoint 4, config 2"):
        _train(config(corpus, run, model={"n_layers": 2}, train={"max_steps": STEPS}))
