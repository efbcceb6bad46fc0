"""The trainer's acceptance interface end to end: the shipped tiny config on the built-in
corpus, one process via ``l3-core train`` and two ranks via ``torchrun`` with TP=2, write the
same losses to their metrics.jsonl."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("megatron.core", reason="needs l3-core[train]")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "packages" / "l3-core" / "examples" / "tiny-cpu.toml"


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_torchrun_tp2_writes_the_single_process_losses(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    sets = ["--set", "train.max_steps=3", "--set", "logging.progress=false"]
    l3_core = shutil.which("l3-core", path=str(Path(sys.executable).parent))
    single = [
        l3_core,
        "train",
        "--config",
        str(CONFIG),
        *sets,
        "--set",
        f"run_dir={tmp_path / 'one'}",
    ]
    subprocess.run(single, check=True, env=env, capture_output=True)
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    two = [
        torchrun,
        "--nproc-per-node",
        "2",
        "-m",
        "l3_core.train",
        "--config",
        str(CONFIG),
        *sets,
        "--set",
        "parallel.tp=2",
        "--set",
        f"run_dir={tmp_path / 'tp2'}",
    ]
    subprocess.run(two, check=True, env=env, capture_output=True)
    one, tp2 = _losses(tmp_path / "one"), _losses(tmp_path / "tp2")
    assert len(one) == 3
    assert tp2 == pytest.approx(one, abs=1e-5)
