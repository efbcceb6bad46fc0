"""When a collective fails: which group, which operation, and which ranks did not arrive.

Every process group of the job waits at most ``train.collective_timeout_s`` for its peers (the
groups' own timeout); a rank that dies closes its connections, so gloo fails its peers'
collectives at once (NCCL's watchdog waits for the timeout). The trainer turns such a failure
into one :class:`~l3_core.errors.PeerFailureError` line (exit code 9) by asking two of
torch.distributed's own tools, the role the paper gives NCCL's flight recorder (section 3.3.4):

* the flight recorder (``TORCH_FR_BUFFER_SIZE``, gloo and NCCL) holds the collectives this rank
  entered: the last one names its group (Megatron's group descriptions) and operation;
* ``monitored_barrier`` on a side gloo group: every rank whose collective failed enters it, and
  rank 0 names the ranks that did not arrive within ``grace_s`` (a hung rank; a dead one closes
  the barrier's connections too, which is reported as such).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import traceback
from typing import Any

import torch
import torch.distributed as dist

from l3_core.errors import PeerFailureError

#: collectives each rank remembers for the report (a ring buffer of small records)
FLIGHT_RECORDER_ENTRIES = 64
SIDE_GROUP_DESC = "L3_FAILURE_CHECK"
_DIST_SOURCE = os.path.dirname(dist.__file__)
_NOT_PASSED = re.compile(r"Ranks? ([\d, ]+) failed to pass monitoredBarrier")
_side: tuple[Any, Any] | None = None  # (default group, side group) of this process


def enable_flight_recorder() -> None:
    """Record collectives from now on (read when a process group is created; keeps a value
    the launcher set)."""
    os.environ.setdefault("TORCH_FR_BUFFER_SIZE", str(FLIGHT_RECORDER_ENTRIES))


def side_group(timeout_s: float) -> Any:
    """The gloo group the failure check meets on (collective on first use per default group)."""
    global _side
    world = dist.group.WORLD
    if _side is None or _side[0] is not world:
        group = dist.new_group(
            backend="gloo",
            timeout=datetime.timedelta(seconds=timeout_s),
            group_desc=SIDE_GROUP_DESC,
        )
        _side = (world, group)
    return _side[1]


def came_from_collective(exc: BaseException) -> bool:
    """Whether ``exc`` was raised inside torch.distributed (a collective, not the model)."""
    if isinstance(exc, dist.DistError):
        return True
    return any(f.filename.startswith(_DIST_SOURCE) for f in traceback.extract_tb(exc.__traceback__))


def last_collective() -> dict[str, Any] | None:
    """The last collective this rank entered outside the side group, from the flight recorder:
    ``op``, ``group`` (its description), ``ranks`` and ``sizes``; None when nothing is recorded."""
    # torch's own reader of the recorder (private; the public dump writes files per rank)
    dump = torch._C._distributed_c10d._dump_fr_trace_json(True, True)  # type: ignore[attr-defined,unused-ignore]
    entries = json.loads(dump).get("entries", [])
    for entry in reversed(entries):
        name, desc = entry["process_group"]
        if desc != SIDE_GROUP_DESC:
            return {
                "op": entry["profiling_name"],
                "group": desc or f"group {name}",
                "ranks": _group_ranks(name),
                "sizes": entry.get("input_sizes"),
            }
    return None


def _group_ranks(pg_name: str) -> list[int] | None:
    # torch keeps its groups by name in a private table; the flight recorder reports the name.
    for group, name in dist.distributed_c10d._world.pg_names.items():
        if name == pg_name:
            return dist.get_process_group_ranks(group)
    return None


def missing_ranks(group: Any, grace_s: float) -> str:
    """Meet the other failed ranks on ``group``; what rank 0 learnt about those that did not
    arrive ("" when all did or on other ranks)."""
    try:
        dist.monitored_barrier(
            group=group, timeout=datetime.timedelta(seconds=grace_s), wait_all_ranks=True
        )
    except RuntimeError as e:
        if dist.get_rank() != 0:
            return ""
        found = _NOT_PASSED.search(str(e))
        if found:
            return f"rank(s) {found.group(1)} did not arrive within {grace_s:g} s more"
        return f"a rank closed its connection (it died or left): {_first_line(e)}"
    return ""


def diagnose(exc: BaseException, step: int, timeout_s: float, grace_s: float) -> PeerFailureError:
    """The one-line error for ``exc``, a failed collective of training step ``step``."""
    where = last_collective()
    what = (
        f"{where['op']} on {where['group']} (ranks {where['ranks']}, sizes {where['sizes']})"
        if where
        else "a collective"
    )
    missing = missing_ranks(side_group(timeout_s), grace_s)
    who = missing or (
        "the ranks that did not arrive are named by rank 0" if dist.get_rank() else "all arrived"
    )
    return PeerFailureError(
        f"rank {dist.get_rank()}, step {step}: {what} failed (timeout "
        f"train.collective_timeout_s = {timeout_s:g} s): {who}; cause: {_first_line(exc)}"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
