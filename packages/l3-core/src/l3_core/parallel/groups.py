"""Process groups in the paper's order [TP, CP, PP, DP] (section 3.3.2).

TP is innermost (neighbouring ranks, fastest links) and DP outermost. The same call serves a
single process, ``torchrun`` and Slurm (``srun`` sets ``SLURM_PROCID``/``SLURM_NTASKS``), and
on a CPU-only machine it uses gloo and applies :mod:`l3_core.parallel.cpu_compat`.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

from l3_core.errors import ConfigError

log = logging.getLogger(__name__)

ORDER = "tp-cp-ep-pp-dp"  # Megatron's spelling of [TP, CP, PP, DP] (no experts: ep = 1)


@dataclass(frozen=True)
class ParallelSizes:
    """Parallel sizes; ``dp = 0`` means "whatever the world size leaves"."""

    tp: int = 1
    cp: int = 1
    pp: int = 1
    vpp: int = 1
    dp: int = 0
    fsdp: int = 1
    sequence_parallel: bool = True
    # Uneven pipelines (paper, 405B: one layer fewer on the first and last stages, which hold
    # the embedding and the loss); 0 = an even split.
    first_stage_layers: int = 0
    last_stage_layers: int = 0

    def resolve(self, world_size: int) -> ParallelSizes:
        """Fill in ``dp`` and check that the sizes tile ``world_size``."""
        for name in ("tp", "cp", "pp", "vpp", "fsdp"):
            if getattr(self, name) < 1:
                raise ConfigError(f"parallel.{name} = {getattr(self, name)}: must be >= 1")
        model = self.tp * self.cp * self.pp
        if world_size % model:
            raise ConfigError(
                f"parallel.tp * cp * pp = {self.tp}*{self.cp}*{self.pp} = {model} must divide "
                f"the world size {world_size}")
        dp = self.dp or world_size // model
        if model * dp != world_size:
            raise ConfigError(
                f"parallel.dp = {self.dp}: tp*cp*pp*dp = {model * dp} must equal the world size "
                f"{world_size} (set parallel.dp = {world_size // model} or 0)")
        if self.fsdp > 1 and self.fsdp != dp:
            raise ConfigError(
                f"parallel.fsdp = {self.fsdp}: fully sharded data parallelism shards over the "
                f"whole data-parallel group, so it must be 1 or equal dp = {dp}")
        if self.fsdp > 1 and (self.tp > 1 or self.pp > 1 or self.cp > 1):
            raise ConfigError(
                f"parallel.fsdp = {self.fsdp} is supported with tp = cp = pp = 1 here "
                f"(got tp={self.tp}, cp={self.cp}, pp={self.pp})")
        if self.vpp > 1 and self.pp == 1:
            raise ConfigError(f"parallel.vpp = {self.vpp} needs parallel.pp > 1")
        return dataclasses.replace(self, dp=dp, sequence_parallel=self.sequence_parallel and self.tp > 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(sizes: ParallelSizes, seed: int = 0, timeout_minutes: int = 30) -> ParallelSizes:
    """Start torch.distributed (if needed) and Megatron's groups; return the resolved sizes.

    On a CPU-only machine this runs inside :func:`l3_core.parallel.cpu_compat.scope`, which
    Megatron needs for its set-up; the patches are gone again when it returns.
    """
    from l3_core.parallel import cpu_compat

    with cpu_compat.scope():
        return _start(sizes, seed, timeout_minutes)


def _start(sizes: ParallelSizes, seed: int, timeout_minutes: int) -> ParallelSizes:
    if not dist.is_initialized():
        env = os.environ
        if "SLURM_PROCID" in env and "RANK" not in env:
            env.setdefault("RANK", env["SLURM_PROCID"])
            env.setdefault("WORLD_SIZE", env["SLURM_NTASKS"])
            env.setdefault("LOCAL_RANK", env.get("SLURM_LOCALID", "0"))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(env.get("LOCAL_RANK", "0")))
        timeout = datetime.timedelta(minutes=timeout_minutes)
        if "RANK" in env:  # torchrun, Slurm or our own spawn
            dist.init_process_group(backend, timeout=timeout)
        else:  # a plain single process; leave os.environ alone for child processes
            dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{_free_port()}",
                                    rank=0, world_size=1, timeout=timeout)
    resolved = sizes.resolve(dist.get_world_size())
    from megatron.core import parallel_state as ps

    if ps.model_parallel_is_initialized():
        ps.destroy_model_parallel()
    ps.initialize_model_parallel(
        tensor_model_parallel_size=resolved.tp,
        pipeline_model_parallel_size=resolved.pp,
        virtual_pipeline_model_parallel_size=resolved.vpp if resolved.vpp > 1 else None,
        context_parallel_size=resolved.cp,
        order=ORDER,
        distributed_timeout_minutes=timeout_minutes,
    )
    from megatron.core import tensor_parallel

    # Megatron forks a per-TP-rank RNG for dropout and recomputation; seed it like Megatron.
    tensor_parallel.model_parallel_cuda_manual_seed(seed)
    torch.manual_seed(seed)
    return resolved


def shutdown() -> None:
    """Tear down Megatron's groups and the default group (for tests that re-initialise)."""
    from megatron.core import parallel_state as ps

    if ps.model_parallel_is_initialized():
        ps.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()
