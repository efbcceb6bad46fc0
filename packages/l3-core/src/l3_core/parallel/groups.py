"""Process groups in the paper's order [TP, CP, PP, DP] (section 3.3.2).

TP is innermost (neighbouring ranks, fastest links) and DP outermost. The same call serves a
single process, ``torchrun`` and Slurm (``srun`` sets ``SLURM_PROCID``/``SLURM_NTASKS``), and
on a CPU-only machine it uses gloo and applies :mod:`l3_core.parallel.cpu_compat`.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket

import torch
import torch.distributed as dist

from l3_core.run_config import ParallelSizes

log = logging.getLogger(__name__)

ORDER = "tp-cp-ep-pp-dp"  # Megatron's spelling of [TP, CP, PP, DP] (no experts: ep = 1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(
    sizes: ParallelSizes, seed: int = 0, timeout_s: float = 1800.0
) -> ParallelSizes:
    """Start torch.distributed (if needed) and Megatron's groups; return the resolved sizes.

    Every group waits at most ``timeout_s`` in a collective; collectives are recorded for the
    failure report (:mod:`l3_core.parallel.failures`), whose side group is created here too.

    On a CPU-only machine this runs inside :func:`l3_core.parallel.cpu_compat.scope`, which
    Megatron needs for its set-up; the patches are gone again when it returns.
    """
    from l3_core.parallel import cpu_compat

    with cpu_compat.scope():
        return _start(sizes, seed, timeout_s)


def _start(sizes: ParallelSizes, seed: int, timeout_s: float) -> ParallelSizes:
    from l3_core.parallel import failures

    if not dist.is_initialized():
        failures.enable_flight_recorder()
        env = os.environ
        if "SLURM_PROCID" in env and "RANK" not in env:
            env.setdefault("RANK", env["SLURM_PROCID"])
            env.setdefault("WORLD_SIZE", env["SLURM_NTASKS"])
            env.setdefault("LOCAL_RANK", env.get("SLURM_LOCALID", "0"))
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(env.get("LOCAL_RANK", "0")))
        timeout = datetime.timedelta(seconds=timeout_s)
        if "TORCHELASTIC_RESTART_COUNT" in env:  # torchrun
            # torchrun keeps its store across restarts, and a restarted group would read the
            # previous attempt's addresses from it (pytorch/pytorch#167288): each attempt meets
            # under its own prefix.
            store, rank, world = next(dist.rendezvous("env://", timeout=timeout))
            attempt = dist.PrefixStore(f"l3_attempt_{env['TORCHELASTIC_RESTART_COUNT']}", store)
            dist.init_process_group(
                backend, store=attempt, rank=rank, world_size=world, timeout=timeout
            )
        elif "RANK" in env:  # Slurm or our own spawn
            dist.init_process_group(backend, timeout=timeout)
        else:  # a plain single process; leave os.environ alone for child processes
            dist.init_process_group(
                backend,
                init_method=f"tcp://127.0.0.1:{_free_port()}",
                rank=0,
                world_size=1,
                timeout=timeout,
            )
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
        distributed_timeout_minutes=timeout_s / 60,  # Megatron builds a timedelta of it
    )
    failures.side_group(timeout_s)
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
