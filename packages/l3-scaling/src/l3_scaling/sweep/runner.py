"""Running a sweep on this machine: every unfinished run in turn as a trainer subprocess.

A run counts as done once its ``metrics.jsonl`` ends with a ``val_loss`` at its last step, so
an interrupted sweep resumes where it stopped; ``runs.csv`` is rewritten after every run.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from l3_scaling.errors import SweepError
from l3_scaling.sweep.collect import collect
from l3_scaling.sweep.config import SweepConfig
from l3_scaling.sweep.plan import PlannedRun
from l3_scaling.trainer_contract import final_val_loss

log = logging.getLogger(__name__)


def _train(run: PlannedRun, cfg: SweepConfig) -> str | None:
    """Train one run (``cfg.command --config <toml>``); a failure's description, or None."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [*cfg.command, "--config", str(run.config_path)]
    log.info("%s: %s", run.name, shlex.join(cmd))
    log_path = run.run_dir / "train.log"
    with log_path.open("w", encoding="utf-8") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode == 0 and final_val_loss(run.run_dir, run.steps) is not None:
        return None
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    return f"{run.name} (exit {proc.returncode}, log {log_path}): " + " | ".join(tail)


def run_sweep(plan: Sequence[PlannedRun], cfg: SweepConfig, *, progress: bool = False) -> Path:
    """Train every unfinished run in turn, then collect.

    A failing run is reported with its log's last lines; the others still run, and a
    :class:`SweepError` naming the failures is raised at the end (``runs.csv`` holds the rest).
    """
    from tqdm import tqdm

    failures = []
    bar = tqdm(plan, desc="sweep", unit="run", disable=not progress)
    for run in bar:
        bar.set_postfix_str(run.name)
        if final_val_loss(run.run_dir, run.steps) is not None:
            log.info("%s: already finished, skipped", run.name)
            continue
        failure = _train(run, cfg)
        if failure:
            failures.append(failure)
        collect(plan, cfg, warn_missing=False)  # so that runs.csv is current after every run
    table = collect(plan, cfg)
    if failures:
        raise SweepError(f"{len(failures)} run(s) failed: " + "; ".join(failures))
    return table
