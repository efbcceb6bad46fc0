"""Run several training configurations in one set of processes (for tests and checks).

Importing Megatron-core costs seconds per process, so equality checks run their configs one
after another inside the same spawned ranks; the process group is kept and Megatron's groups
are rebuilt per config.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

from l3_core.config import from_dict, to_dict
from l3_core.train.config import RunConfig


def run_configs(configs: list[dict[str, Any]], out: str) -> None:
    """Train each config (plain dicts) in turn; rank 0 writes ``{name: records}`` to ``out``."""
    import torch.distributed as dist

    warnings.filterwarnings("ignore")
    logging.getLogger("megatron").setLevel(logging.ERROR)
    from l3_core.train.loop import Trainer

    results: dict[str, Any] = {}
    for spec in configs:
        spec = dict(spec)
        name = spec.pop("name")
        cfg = from_dict(RunConfig, spec)
        try:
            records = Trainer(cfg).run()
            results[name] = records
        except Exception as e:  # reported per config so one failure does not hide the others
            results[name] = {"error": f"{type(e).__name__}: {e}"}
            logging.getLogger(__name__).exception("config %s failed", name)
        dist.barrier()
    if dist.get_rank() == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def as_dict(cfg: RunConfig, name: str) -> dict[str, Any]:
    return {"name": name, **to_dict(cfg)}
