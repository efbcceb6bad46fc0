"""Straggler detection: every rank's step time, gathered each step, and a warning naming the
slow ones.

One float per rank per step travels (an all-gather of ``world_size`` numbers), so the check is
cheap next to a training step. A rank is slow when its step took more than ``factor`` times
the median rank's: one slow host (a throttled GPU, a noisy neighbour) holds every other rank
at each collective, and the median is what the job would do without it.
"""

from __future__ import annotations

import logging
import statistics

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def slow_ranks(step_times: list[float], factor: float) -> list[int]:
    """The ranks whose time exceeds ``factor`` times the median (none when ``factor`` is 0)."""
    if factor <= 0 or len(step_times) < 2:
        return []
    median = statistics.median(step_times)
    return [r for r, t in enumerate(step_times) if t > factor * median]


class StragglerDetector:
    """Gathers each rank's step time (collective) and warns on rank 0 about slow ranks."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def check(self, step: int, seconds: float) -> list[int]:
        """Every rank's ``seconds`` for ``step`` gathered; the slow ranks (on every rank)."""
        if self.factor <= 0 or dist.get_world_size() < 2:
            return []
        mine = torch.tensor([seconds], dtype=torch.float64, device=_device())
        every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(every, mine)
        times = [float(t) for t in every]
        slow = slow_ranks(times, self.factor)
        if slow and dist.get_rank() == 0:
            median = statistics.median(times)
            log.warning(
                "step %d: straggler rank(s) %s: %s s against a median of %.3f s (> %g x)",
                step,
                ", ".join(map(str, slow)),
                ", ".join(f"{times[r]:.3f}" for r in slow),
                median,
                self.factor,
            )
        return slow


def _device() -> torch.device:
    # NCCL gathers device tensors only
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
