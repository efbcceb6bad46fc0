"""Running a sweep on this machine: every unfinished run as a trainer subprocess,
``cfg.parallel`` at a time with ``cfg.threads_per_run`` threads each.

A run counts as done once its ``metrics.jsonl`` ends with a ``val_loss`` at its last step, so
an interrupted sweep resumes where it stopped; ``runs.csv`` is rewritten after every run.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from l3_scaling.errors import SweepError
from l3_scaling.sweep.collect import collect
from l3_scaling.sweep.config import SweepConfig
from l3_scaling.sweep.plan import PlannedRun
from l3_scaling.trainer_contract import final_val_loss

log = logging.getLogger(__name__)

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _train(run: PlannedRun, cfg: SweepConfig) -> str | None:
    """Train one run (``cfg.command --config <toml>``); a failure's description, or None."""
    run.run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [*cfg.command, "--config", str(run.config_path)]
    log.info("%s: %s", run.name, shlex.join(cmd))
    log_path = run.run_dir / "train.log"
    env = {**os.environ, **dict.fromkeys(_THREAD_VARS, str(cfg.threads_per_run))}
    with log_path.open("w", encoding="utf-8") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode == 0 and final_val_loss(run.run_dir, run.steps) is not None:
        return None
    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
    return f"{run.name} (exit {proc.returncode}, log {log_path}): " + " | ".join(tail)


def unfinished(plan: Sequence[PlannedRun]) -> list[PlannedRun]:
    """The runs of ``plan`` without a final validation loss, each once (two passes may plan
    the same run)."""
    seen: set[str] = set()
    todo = []
    for run in plan:
        if run.name in seen or final_val_loss(run.run_dir, run.steps) is not None:
            continue
        seen.add(run.name)
        todo.append(run)
    return todo


def run_sweep(
    plan: Sequence[PlannedRun],
    cfg: SweepConfig,
    *,
    progress: bool = False,
    table: str = "runs.csv",
) -> Path:
    """Train every unfinished run (``cfg.parallel`` at once), then collect into ``table``.

    A failing run is reported with its log's last lines; the others still run, and a
    :class:`SweepError` naming the failures is raised at the end (``runs.csv`` holds the rest).
    """
    from tqdm import tqdm

    todo = unfinished(plan)
    skipped = len({r.name for r in plan}) - len(todo)
    if skipped:
        log.info("%d run(s) already finished, skipped", skipped)
    failures = []
    with (
        tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress) as bar,
        ThreadPoolExecutor(max_workers=cfg.parallel) as pool,
    ):
        futures = {pool.submit(_train, run, cfg): run for run in todo}
        for fut in as_completed(futures):
            failure = fut.result()
            if failure:
                failures.append(failure)
            collect(
                plan, cfg, warn_missing=False, table=table
            )  # runs.csv is current after every run
            bar.set_postfix_str(futures[fut].name)
            bar.update()
    path = collect(plan, cfg, table=table)
    if failures:
        raise SweepError(f"{len(failures)} run(s) failed: " + "; ".join(failures))
    return path
