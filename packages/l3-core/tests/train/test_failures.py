"""Failures on two gloo ranks: a rank that hangs or dies ends its peer's run promptly with one
line naming the group, the operation and the ranks that did not arrive (exit code 9)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from l3_core.exit_codes import ExitCode
from l3_core.run_config import write_run_config
from l3_core.train.testing import FAULT_ENV, config, make_shards

TIMEOUT_S = 4.0
#: the CLI with the test objectives registered (what ``torchrun script.py`` would run)
LAUNCHER = "import sys, l3_core.train.testing; from l3_core.train.cli import main; sys.exit(main())"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_ranks(cfg_path, fault: str) -> list[subprocess.Popen]:
    port = _port()
    procs = []
    for rank in range(2):
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore",
            FAULT_ENV: fault,
        }
        cmd = [sys.executable, "-c", LAUNCHER, "--config", str(cfg_path)]
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    return procs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("corpus"), n_docs=40)


def _run_with_fault(corpus, tmp_path, fault: str) -> tuple[int, str]:
    cfg = config(
        corpus,
        tmp_path / "run",
        model={"preset": "llama3-tiny", "n_layers": 2},
        train={
            "max_steps": 4,
            "global_batch_size": 4,
            "eval_every": 0,
            "objective": "test-fault",
            "collective_timeout_s": TIMEOUT_S,
        },
    )
    write_run_config(tmp_path / "run.toml", cfg)
    rank0, rank1 = _start_ranks(tmp_path / "run.toml", fault)
    try:
        _, err = rank0.communicate(timeout=240)  # it ends by itself, rank 1 still hanging
    finally:
        rank1.kill()
        rank1.communicate()
    return rank0.returncode, err


@pytest.mark.parametrize("fault", ["sleep", "exit"])
def test_a_rank_that_hangs_or_dies_ends_the_run_of_the_others_naming_it(fault, corpus, tmp_path):
    code, err = _run_with_fault(corpus, tmp_path, f"{fault}:1:2")
    last = err.strip().splitlines()[-1]
    assert code == ExitCode.PEER, err[-3000:]
    assert last.startswith("l3-core train: error: rank 0, step 2: gloo:"), last
    assert "train.collective_timeout_s = 4 s" in last
    if fault == "sleep":
        assert "rank(s) 1 did not arrive" in last, last
    else:
        assert "a rank closed its connection" in last, last
