"""Run a pipeline on Ray (``pip install 'l3-data[ray]'``): one actor per CPU holds an engine
(and its loaded models); work items are actor calls, and the reduce of each global step runs
on one of them. ``ray_address`` empty starts a local Ray instance; ``"auto"`` or
``"ray://host:port"`` joins an existing cluster (whose workers share the workdir's file
system)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from l3_data.executors.base import Executor, register_executor

if TYPE_CHECKING:
    from l3_data.executors.engine import Engine
    from l3_data.pipeline import Settings

log = logging.getLogger(__name__)


class _EngineActor:
    """One engine per Ray worker process, rebuilt from the pipeline's plain config."""

    def __init__(self, config: dict[str, Any]) -> None:
        from l3_data.executors.engine import Engine

        self.engine = Engine.from_config(config)
        self.engine.setup()

    def run_item(self, seg: int, item: Any) -> int:
        return self.engine.run_item(seg, item)

    def reduce(self, seg: int) -> None:
        self.engine.reduce(seg)


@register_executor("ray")
class RayExecutor(Executor):
    extra = "ray"

    def __init__(self, address: str = "", num_cpus: int | None = None) -> None:
        self.address = address
        self.num_cpus = num_cpus

    @classmethod
    def from_settings(cls, settings: Settings) -> RayExecutor:
        return cls(settings.ray_address, settings.workers or None)

    @contextlib.contextmanager
    def session(self, engine: Engine) -> Iterator[None]:
        import ray
        from ray.util import ActorPool

        self.engine = engine
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            elif self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
            started = True
        try:
            log.info("running on Ray: %s", ray.cluster_resources())
            n = self.num_cpus or max(1, int(ray.cluster_resources().get("CPU", 1)))
            actor = ray.remote(num_cpus=1)(_EngineActor)
            config = engine.config()
            self._actors = [actor.remote(config) for _ in range(n)]
            self._pool = ActorPool(self._actors)
            yield
        finally:
            self._actors = []
            if started:
                ray.shutdown()

    def run_items(self, seg: int, items: list[Any]) -> Iterator[int]:
        yield from self._pool.map_unordered(lambda a, item: a.run_item.remote(seg, item), items)

    def reduce(self, seg: int) -> None:
        import ray

        ray.get(self._actors[0].reduce.remote(seg))
