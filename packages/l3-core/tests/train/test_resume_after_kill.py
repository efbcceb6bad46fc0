"""A run killed with SIGKILL resumes from its last checkpoint with exactly the same losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("megatron.core", reason="needs the train extra (megatron-core)")

from l3_core.metrics_schema import read_metrics
from l3_core.train.testing import make_shards

STEPS = 8


def _toml(data, run_dir) -> str:
    return f"""
run_dir = "{run_dir}"
[model]
preset = "llama3-tiny"
[data]
path = "{data}"
seq_len = 64
val_fraction = 0.05
[train]
max_steps = {STEPS}
seed = 3
global_batch_size = 8
micro_batch_size = 4
eval_every = 4
eval_batches = 1
[schedule]
warmup_steps = 2
anneal_steps = 2
[checkpoint]
every = 2
keep_last = 2
[logging]
tensorboard = false
progress = false
"""


def _command(cfg) -> list[str]:
    return [sys.executable, "-m", "l3_core.train", "--config", str(cfg)]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def test_killed_run_resumes_with_identical_losses(tmp_path):
    data = make_shards(tmp_path / "data")
    ref_cfg, cut_cfg = tmp_path / "ref.toml", tmp_path / "cut.toml"
    ref_cfg.write_text(_toml(data, tmp_path / "ref"))
    cut_cfg.write_text(_toml(data, tmp_path / "cut"))
    subprocess.run(_command(ref_cfg), check=True, env=_env(), capture_output=True)

    proc = subprocess.Popen(
        _command(cut_cfg), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    latest = tmp_path / "cut" / "checkpoints" / "latest"
    deadline = time.monotonic() + 120
    while not (latest.exists() and latest.read_text().strip() >= "step_00000004"):
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert killed_at[-1].step < STEPS, "the kill came too late to test anything"

    subprocess.run(_command(cut_cfg), check=True, env=_env(), capture_output=True)
    ref = read_metrics(tmp_path / "ref" / "metrics.jsonl")
    cut = read_metrics(tmp_path / "cut" / "metrics.jsonl")
    assert [r.step for r in cut] == list(range(1, STEPS + 1))  # no step lost or repeated
    for key in ("loss", "grad_norm", "lr"):
        assert [getattr(r, key) for r in cut] == [getattr(r, key) for r in ref], key
    assert cut[-1].val_loss == ref[-1].val_loss
    kept = sorted(p.name for p in (tmp_path / "cut" / "checkpoints").glob("step_*"))
    assert kept == ["step_00000006", "step_00000008"]  # keep_last = 2
    state = json.loads(
        (tmp_path / "cut" / "checkpoints" / "step_00000008" / "trainer.json").read_text()
    )
    assert state["step"] == STEPS
