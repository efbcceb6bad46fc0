"""Run a pipeline on this machine: work items over N worker processes (in-process for one)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from typing import Any

from tqdm import tqdm

from l3_data.executors.engine import Engine

log = logging.getLogger(__name__)
_ENGINE: Engine | None = None


def _work(args: tuple[int, Any]) -> int:
    assert _ENGINE is not None
    return _ENGINE.run_item(*args)


class LocalExecutor:
    """``workers`` forked processes (0: one per CPU) take work items (tasks, then chunks) as
    they free up. Steps are set up (models loaded) once in this process before the fork, so a
    bad model path fails before any work and workers share the loaded models."""

    def __init__(self, workers: int = 0, progress: bool = True) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.progress = progress

    def run(self, engine: Engine) -> dict[str, Any]:
        global _ENGINE
        engine.setup()
        _ENGINE = engine
        for seg in range(len(engine.segments)):
            items = engine.pending(seg)
            what = "tasks" if seg == 0 else "chunks"
            bar = tqdm(total=len(items), desc=f"segment {seg} ({what})", unit=what[:-1],
                       disable=not self.progress or not items, leave=False)
            if self.workers == 1 or len(items) <= 1:
                for item in items:
                    engine.run_item(seg, item)
                    bar.update()
            else:
                ctx = mp.get_context("fork")
                with ctx.Pool(min(self.workers, len(items))) as pool:
                    for _ in pool.imap_unordered(_work, [(seg, i) for i in items]):
                        bar.update()
            bar.close()
            engine.reduce(seg)
            log.info("segment %d done (%d %s)", seg, len(items), what)
        return engine.finalize()
