"""Executors run an :class:`~l3_data.executors.engine.Engine` somewhere; steps know nothing of
them."""

from __future__ import annotations

from typing import Any

from l3_data.executors.engine import Engine
from l3_data.executors.local import LocalExecutor
from l3_data.pipeline import Pipeline


def run_pipeline(pipeline: Pipeline, *, restart: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) ``pipeline`` with the executor its settings name; return the report."""
    engine = Engine(pipeline)
    engine.prepare(restart=restart)
    s = pipeline.settings
    if s.executor == "ray":
        from l3_data.executors.ray_executor import RayExecutor

        return RayExecutor(s.ray_address, s.workers or None, progress=progress).run(engine)
    return LocalExecutor(s.workers, progress=progress).run(engine)


__all__ = ["Engine", "LocalExecutor", "run_pipeline"]
