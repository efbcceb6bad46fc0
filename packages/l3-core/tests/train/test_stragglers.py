"""Straggler detection: the rule on its own, and the gathered check on two gloo ranks."""

from __future__ import annotations

import json
import logging

import pytest

from l3_core.parallel.launch import spawn
from l3_core.train.stragglers import StragglerDetector, slow_ranks


def test_a_rank_slower_than_factor_times_the_median_is_named():
    assert slow_ranks([1.0, 1.1, 0.9, 3.5], factor=2.0) == [3]
    assert slow_ranks([1.0, 1.1, 0.9, 1.9], factor=2.0) == []


def test_detection_is_off_at_factor_zero_and_on_one_rank():
    assert slow_ranks([1.0, 100.0], factor=0) == []
    assert slow_ranks([100.0], factor=2.0) == []


def _two_ranks(out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    logging.getLogger("l3_core.train.stragglers").addHandler(handler)
    seconds = 1.0 if dist.get_rank() == 1 else 0.1
    slow = StragglerDetector(factor=1.5).check(7, seconds)
    even = StragglerDetector(factor=1.5).check(8, 0.1)
    with open(f"{out}.{dist.get_rank()}", "w") as f:
        json.dump({"slow": slow, "even": even, "log": records}, f)
    dist.destroy_process_group()


def test_the_gathered_check_names_the_slow_rank_on_rank_0(tmp_path):
    out = str(tmp_path / "out")
    spawn(2, _two_ranks, out)
    rank0 = json.loads((tmp_path / "out.0").read_text())
    rank1 = json.loads((tmp_path / "out.1").read_text())
    assert rank0["slow"] == rank1["slow"] == [1]
    assert rank0["even"] == rank1["even"] == []
    assert len(rank0["log"]) == 1 and rank1["log"] == []
    assert "step 7: straggler rank(s) 1: 1.000 s against a median of 0.550 s" in rank0["log"][0]


def test_a_negative_factor_is_refused_naming_the_key(tmp_path):
    from l3_core.errors import ConfigError
    from l3_core.train.testing import config

    with pytest.raises(ConfigError, match="logging.straggler_factor"):
        config(tmp_path, tmp_path, logging={"straggler_factor": -1.0}).validate(1)
