"""l3-scaling with the real l3-core trainer: its configs load as the trainer's RunConfig, and a
tiny sweep trains, collects and fits end to end."""

from __future__ import annotations

import json
import sys

import pytest

pytest.importorskip("megatron.core", reason="the sweep trains with l3-core[train]")

from l3_core.config import load_config
from l3_core.run_config import RunConfig
from l3_scaling.data import read_runs
from l3_scaling.sweep import SweepConfig, plan_sweep, run_sweep, write_sweep


def _cfg(tmp_path, **kw) -> SweepConfig:
    base = dict(
        budgets=[2e10, 4e10],
        out_dir=tmp_path / "sw",
        tokens_per_param=3.0,
        decades=0.6,
        sizes_per_budget=3,
        head_dim=4,
        model={"vocab_size": 8192},
        global_batch_size=16,
        micro_batch_size=16,
        lr=1e-2,
        min_steps=5,
        eval_batches=2,
        command=[sys.executable, "-m", "l3_core.train"],
        trainer={
            "train": {"peak_flops": 1e11},
            "logging": {"tensorboard": False, "plot": False, "progress": False},
        },
    )
    base.update(kw)
    return SweepConfig(**base)


def test_sweep_configs_load_as_the_trainers_run_config(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_sweep(cfg)
    write_sweep(plan, cfg)
    for run in plan:
        rc = load_config(RunConfig, run.config_path)
        rc.validate(world_size=1)
        args = rc.model.args()
        assert (args.dim, args.n_layers, args.n_heads) == (run.dim, run.n_layers, run.n_heads)
        assert rc.train.max_steps == run.steps and rc.run_dir == str(run.run_dir)
        assert args.flops_per_token(rc.data.seq_len) * run.tokens == pytest.approx(run.flops)


def test_tiny_sweep_trains_every_run_and_collects_final_val_losses(tmp_path):
    cfg = _cfg(tmp_path)
    plan = plan_sweep(cfg)
    write_sweep(plan, cfg)
    runs = read_runs(run_sweep(plan, cfg), required=("C", "N", "D", "loss"))
    assert len(runs) == len(plan) == 6
    for run, loss in zip(plan, runs.loss):
        records = [json.loads(x) for x in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert records[-1]["step"] == run.steps and records[-1]["val_loss"] == loss
        assert loss < records[0]["loss"]  # every run learned something
