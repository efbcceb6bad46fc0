"""Run a pipeline on this machine: work items over N forked worker processes (in process
for one worker or one item)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from l3_data.executors.base import Executor, register_executor

if TYPE_CHECKING:
    from l3_data.executors.engine import Engine
    from l3_data.pipeline import Settings

log = logging.getLogger(__name__)


@register_executor("local")
class LocalExecutor(Executor):
    """``workers`` forked processes (0: one per CPU) take work items (tasks, then chunks) as
    they free up. The engine is set up (models loaded) before the fork, so the workers share
    the loaded models and nothing is pickled but the items and their results."""

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: _ForkedWorkers | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalExecutor:
        return cls(settings.workers)

    @contextlib.contextmanager
    def session(self, engine: Engine) -> Iterator[None]:
        self.engine = engine
        failed = True
        try:
            yield
            failed = False
        finally:
            if self._pool is not None:
                self._pool.close(terminate=failed)
                self._pool = None

    def run_items(self, seg: int, items: list[Any]) -> Iterator[int]:
        if self.workers == 1 or len(items) <= 1:
            yield from super().run_items(seg, items)
            return
        if self._pool is None:  # forked on first need, after the engine's setup
            self._pool = _ForkedWorkers(self.engine, self.workers)
        yield from self._pool.run_unordered(seg, items)


def _serve(engine: Engine, conn: Connection) -> None:
    """A worker's loop: run each ``(segment, item)`` received, send back ``(ok, result)``."""
    while (job := conn.recv()) is not None:
        seg, item = job
        try:
            conn.send((True, engine.run_item(seg, item)))
        except Exception as e:
            try:
                conn.send((False, e))
            except Exception:  # an exception that cannot be sent: send what it said
                conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))


class _ForkedWorkers:
    """Worker processes forked from this one, each with a pipe: an item is sent to a free
    worker, its result comes back on the same pipe."""

    def __init__(self, engine: Engine, n: int) -> None:
        ctx = mp.get_context("fork")
        self._workers: list[tuple[BaseProcess, Connection]] = []
        for _ in range(n):
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(engine, there), daemon=True)
            proc.start()
            there.close()
            self._workers.append((proc, here))

    def run_unordered(self, seg: int, items: list[Any]) -> Iterator[int]:
        todo = list(reversed(items))
        busy: dict[Connection, tuple[BaseProcess, Any]] = {}
        for proc, conn in self._workers:
            if todo:
                item = todo.pop()
                conn.send((seg, item))
                busy[conn] = (proc, item)
        while busy:
            ready = wait([*busy, *(p.sentinel for p, _ in busy.values())])
            for conn in [c for c in busy if c in ready]:
                proc, _ = busy.pop(conn)
                ok, value = conn.recv()
                if not ok:
                    raise value
                if todo:
                    item = todo.pop()
                    conn.send((seg, item))
                    busy[conn] = (proc, item)
                yield value
            for proc, item in busy.values():
                if not proc.is_alive():
                    raise RuntimeError(
                        f"worker process {proc.pid} died (exit code "
                        f"{proc.exitcode}) while running item {item!r} of "
                        f"segment {seg}"
                    )

    def close(self, terminate: bool = False) -> None:
        """Stop the workers: let them finish (``terminate=False``) or kill them at once."""
        for proc, conn in self._workers:
            if terminate:
                proc.terminate()
            else:
                with contextlib.suppress(OSError):
                    conn.send(None)
        for proc, conn in self._workers:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
