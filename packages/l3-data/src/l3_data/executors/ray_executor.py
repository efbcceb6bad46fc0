"""Run a pipeline on Ray (``pip install l3-data[ray]``): each work item is a Ray task; the
reduce of each global step is one Ray task too. ``ray_address`` empty starts a local Ray
instance; ``"auto"`` or ``"ray://host:port"`` joins an existing cluster."""

from __future__ import annotations

import logging
from typing import Any

from tqdm import tqdm

from l3_data.errors import DataError
from l3_data.executors.engine import Engine

log = logging.getLogger(__name__)
_CACHE: dict[str, Engine] = {}


def _engine(config: dict[str, Any]) -> Engine:
    key = repr(config)
    if key not in _CACHE:  # one engine (and one model load) per Ray worker process
        _CACHE.clear()
        _CACHE[key] = Engine.from_config(config)
    return _CACHE[key]


def _work(config: dict[str, Any], seg: int, item: Any) -> int:
    return _engine(config).run_item(seg, item)


def _reduce(config: dict[str, Any], seg: int) -> None:
    _engine(config).reduce(seg)


class RayExecutor:
    def __init__(self, address: str = "", num_cpus: int | None = None, progress: bool = True) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.progress = progress

    def run(self, engine: Engine) -> dict[str, Any]:
        try:
            import ray
        except ImportError:
            raise DataError("executor = 'ray' needs Ray: pip install 'l3-data[ray]'") from None
        engine.setup()  # fail on a bad model path here, before any task is sent
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            elif self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
            started = True
        log.info("running on Ray: %s", ray.cluster_resources())
        try:
            work = ray.remote(_work)
            reduce = ray.remote(_reduce)
            config = ray.put(engine.config())
            for seg in range(len(engine.segments)):
                items = engine.pending(seg)
                pending = [work.remote(config, seg, i) for i in items]
                with tqdm(total=len(pending), desc=f"segment {seg} (ray)",
                          disable=not self.progress or not pending, leave=False) as bar:
                    while pending:
                        done, pending = ray.wait(pending, num_returns=1)
                        ray.get(done)
                        bar.update(len(done))
                ray.get(reduce.remote(config, seg))
            return engine.finalize()
        finally:
            if started:
                ray.shutdown()
