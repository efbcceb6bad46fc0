"""Elastic restart: one rank of a two-process ``torchrun --max-restarts 1`` job is killed after
a checkpoint; torchrun restarts the group, which resumes from the last complete checkpoint and
ends with exactly the losses of an uninterrupted run (fp32, gloo)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from l3_core.metrics_schema import read_metrics
from l3_core.run_config import write_run_config
from l3_core.train.testing import FAULT_ENV, config, make_shards

STEPS = 5
#: the CLI with the test objectives registered, as the script torchrun starts
LAUNCHER = "import sys, l3_core.train.testing; from l3_core.train.cli import main; sys.exit(main())"


def _torchrun(tmp_path, name: str, corpus, fault: str) -> subprocess.CompletedProcess:
    cfg = config(
        corpus,
        tmp_path / name,
        model={"preset": "llama3-tiny", "n_layers": 2},
        train={
            "max_steps": STEPS,
            "global_batch_size": 4,
            "eval_every": 0,
            "objective": "test-fault",
            "collective_timeout_s": 30.0,
        },
        checkpoint={"every": 2, "keep_last": 2},
    )
    write_run_config(tmp_path / f"{name}.toml", cfg)
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER + "\n")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "--max-restarts",
        "1",
        str(script),
        "--config",
        str(tmp_path / f"{name}.toml"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", FAULT_ENV: fault}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)


def test_torchrun_restarts_a_killed_rank_from_the_last_checkpoint_with_the_same_losses(tmp_path):
    corpus = make_shards(tmp_path / "data", n_docs=40)
    ref = _torchrun(tmp_path, "ref", corpus, "none:-1:0")
    assert ref.returncode == 0, ref.stderr[-3000:]
    # rank 1 is killed (SIGKILL) in the forward pass of step 4, after checkpoint 2
    cut = _torchrun(tmp_path, "cut", corpus, "kill:1:4")
    assert cut.returncode == 0, cut.stderr[-3000:]
    assert "failed (exitcode: -9) local_rank: 1" in cut.stderr, cut.stderr[-3000:]
    assert "checkpoints/step_00000002 at step 2" in cut.stderr  # the restarted attempt resumed
    a, b = read_metrics(tmp_path / "ref"), read_metrics(tmp_path / "cut")
    assert [r.step for r in b] == list(range(1, STEPS + 1))  # no step lost or repeated
    for key in ("loss", "grad_norm", "lr"):
        assert [getattr(r, key) for r in b] == [getattr(r, key) for r in a], key
    assert b[-1].val_loss == a[-1].val_loss
