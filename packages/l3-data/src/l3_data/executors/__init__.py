"""Executors run an :class:`~l3_data.executors.engine.Engine` somewhere; steps know nothing of
them. Importing this package registers the built-in executors in ``EXECUTORS``."""

from __future__ import annotations

from typing import Any

from l3_data.executors.base import EXECUTORS, Executor, register_executor, run_engine
from l3_data.executors.engine import Engine
from l3_data.executors.local import LocalExecutor  # importing an executor registers it
from l3_data.executors.ray_executor import RayExecutor
from l3_data.pipeline import Pipeline


def run_pipeline(
    pipeline: Pipeline, *, restart: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run (or resume) ``pipeline`` with the executor its settings name; return the report."""
    engine = Engine(pipeline)
    engine.prepare(restart=restart)
    executor = EXECUTORS[pipeline.settings.executor].from_settings(pipeline.settings)
    return run_engine(engine, executor, progress)


__all__ = [
    "EXECUTORS",
    "Engine",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "register_executor",
    "run_engine",
    "run_pipeline",
]
