"""The LR schedule and ramps against their closed forms."""

from __future__ import annotations

import math

import pytest

from l3_core.run_config import load_run_config
from l3_core.train import schedule


def _cfg(*overrides):
    return load_run_config(
        None,
        [
            "optimizer.lr=1.0",
            "optimizer.min_lr_ratio=0.1",
            "train.max_steps=110",
            "schedule.warmup_steps=10",
            *overrides,
        ],
    )


def test_warmup_is_linear_to_the_peak():
    cfg = _cfg()
    assert [schedule.learning_rate(s, cfg) for s in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    assert schedule.learning_rate(9, cfg) == pytest.approx(1.0)


def test_cosine_decays_from_peak_to_floor():
    cfg = _cfg()  # decay over steps 10..110
    assert schedule.learning_rate(10, cfg) == pytest.approx(1.0)
    mid = 0.1 + 0.5 * 0.9 * (1 + math.cos(math.pi * 0.5))
    assert schedule.learning_rate(60, cfg) == pytest.approx(mid)
    assert schedule.learning_rate(109, cfg) == pytest.approx(
        0.1 + 0.45 * (1 + math.cos(math.pi * 0.99))
    )


def test_annealing_decays_linearly_to_exactly_zero():
    cfg = _cfg("schedule.anneal_steps=10")  # cosine over 10..100, anneal 100..110
    start = schedule.learning_rate(99, cfg)
    lrs = [schedule.learning_rate(s, cfg) for s in range(100, 110)]
    floor = 0.1  # the cosine has reached its floor at step 100
    assert start == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 89 / 90)))
    assert lrs == pytest.approx([floor * (1 - k / 10) for k in range(1, 11)])
    assert lrs[-1] == 0.0
    assert not schedule.in_anneal(99, cfg) and schedule.in_anneal(100, cfg)


def test_ramps_switch_at_their_steps():
    cfg = _cfg(
        "schedule.batch_ramp=[[5, 16], [20, 32]]",
        "schedule.seq_ramp=[[8, 256]]",
        "train.global_batch_size=8",
        "data.seq_len=128",
    )
    assert [schedule.batch_size_at(s, cfg) for s in (0, 4, 5, 19, 20)] == [8, 8, 16, 16, 32]
    assert [schedule.seq_len_at(s, cfg) for s in (7, 8)] == [128, 256]


def test_long_context_stages_follow_the_main_phase():
    cfg = _cfg("long_context.stages=[{seq_len = 256, steps = 3}, {seq_len = 512, steps = 2}]")
    assert cfg.total_steps == 115
    assert [schedule.seq_len_at(s, cfg) for s in (110, 112, 113, 114)] == [256, 256, 512, 512]


def test_anneal_fraction_scales_with_the_run_length():
    cfg = _cfg("schedule.anneal_fraction=0.1")
    assert cfg.anneal_steps == 11
    assert schedule.learning_rate(109, cfg) == 0.0
    short = _cfg("schedule.anneal_fraction=0.1", "train.max_steps=3")
    assert short.anneal_steps == 0
