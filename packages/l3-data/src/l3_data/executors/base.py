"""What every executor shares: the registry of executors by name and the one segment loop.

An executor only says how work items run (in this process, in forked workers, as Ray actor
calls) and where a barrier's reduce runs; the order of the work (segment by segment, the
reduce after each, the report at the end) is :func:`run_engine`'s, the same for all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from tqdm import tqdm

if TYPE_CHECKING:
    from l3_data.executors.engine import Engine
    from l3_data.pipeline import Settings

log = logging.getLogger(__name__)


class Executor:
    """Runs work items of an :class:`Engine`. Subclasses override :meth:`session`,
    :meth:`run_items` and, where the reduce must run elsewhere, :meth:`reduce`."""

    # The optional extra (see l3_data.extras) the executor needs; checked at pipeline load.
    extra: ClassVar[str] = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Executor:
        raise NotImplementedError

    @contextlib.contextmanager
    def session(self, engine: Engine) -> Iterator[None]:
        """Hold what the run needs (worker processes, a cluster connection) while it lasts."""
        self.engine = engine
        yield

    def run_items(self, seg: int, items: list[Any]) -> Iterator[int]:
        """Run every item of segment ``seg``; yield each one's completed-unit count as it ends."""
        for item in items:
            yield self.engine.run_item(seg, item)

    def reduce(self, seg: int) -> None:
        self.engine.reduce(seg)


EXECUTORS: dict[str, type[Executor]] = {}


def register_executor(name: str) -> Callable[[type[Executor]], type[Executor]]:
    """Class decorator: make an executor available as ``pipeline.executor = name``."""

    def deco(cls: type[Executor]) -> type[Executor]:
        EXECUTORS[name] = cls
        return cls

    return deco


def run_engine(engine: Engine, executor: Executor, progress: bool = True) -> dict[str, Any]:
    """Run the pending work of every segment, reduce each barrier, and return the report."""
    # Set up (load models) here first: a bad model path fails before any work, and forked
    # workers share what was loaded.
    engine.setup()
    with executor.session(engine):
        for seg in range(len(engine.segments)):
            items = engine.pending(seg)
            kind = engine.item_kind(seg)
            with tqdm(
                total=len(items),
                desc=f"segment {seg} ({kind})",
                unit=kind[:-1],
                disable=not progress or not items,
                leave=False,
            ) as bar:
                for _ in executor.run_items(seg, items):
                    bar.update()
            # a partitioned barrier's parts are work items too, spread over the workers
            parts = engine.pending_partitions(seg)
            for _ in executor.run_items(seg, list(parts)):
                pass
            executor.reduce(seg)
            log.info("segment %d done (%d %s)", seg, len(items), kind)
        return engine.finalize()
