"""The training loop on Megatron-core: one code path for one process and for N.

Every rank reads the same deterministic stream of global batches and keeps its own slice: its
data-parallel rows, split into micro-batches, and its context-parallel columns. What a batch
is, how it is split, the forward step and the loss belong to the run's
:class:`~l3_core.train.objective.Objective` (by default the packed-stream language-model
loss). Megatron's schedules run forward and backward (no pipelining, 1F1B, or interleaved 1F1B
with virtual stages), its DDP reduces gradients and its distributed optimizer (ZeRO-1) steps.
The loss is a sum divided by the global count, so every split computes the same number.

A Trainer holds :func:`l3_core.parallel.cpu_compat.scope` open from construction to
:meth:`Trainer.close` (or the end of its ``with`` block) on a CPU-only machine.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from l3_core.args import ModelArgs
from l3_core.config import to_dict
from l3_core.errors import CheckpointError
from l3_core.io import remove_stale_temporaries, write_json
from l3_core.parallel import cpu_compat, failures
from l3_core.parallel.groups import ParallelSizes, init_distributed
from l3_core.parallel.model import ModelOptions, build_model_chunks, transformer_config
from l3_core.run_config import RunConfig
from l3_core.train import checkpoint as ckpt
from l3_core.train import schedule
from l3_core.train.checkpoint_backend import CheckpointBackend, checkpoint_backend
from l3_core.train.metrics import MetricsLogger, plot_loss_curve, truncate_metrics
from l3_core.train.objective import Layout, Objective, StepResult, objective_named
from l3_core.train.peak import device_peak_flops
from l3_core.train.stragglers import StragglerDetector

log = logging.getLogger(__name__)


class Trainer:
    """Builds everything from a :class:`RunConfig`; :meth:`run` trains to the end.

    ``objective`` is what is optimised (default: the registered ``"lm"`` objective). Use it as
    a context manager, or call :meth:`close`, to leave the CPU compatibility scope.
    """

    # One chunk per virtual pipeline stage: Megatron's DDP (untyped) or an FSDP2 module.
    model: list[Any]
    optimizer: Any  # Megatron's (untyped) optimizer or FsdpOptimizer, which mirrors its API

    def __init__(self, cfg: RunConfig, objective: Objective | None = None) -> None:
        self._scope = contextlib.ExitStack()
        self._scope.enter_context(cpu_compat.scope())
        try:
            self._set_up(cfg, objective)
        except BaseException:
            self._scope.close()
            raise

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave the CPU compatibility scope (the trainer must not step afterwards)."""
        self._scope.close()

    # -- set-up --------------------------------------------------------------------------------

    def _set_up(self, cfg: RunConfig, objective: Objective | None) -> None:
        self.cfg = cfg
        self.args: ModelArgs = cfg.model.args()
        cfg.check_values()  # the timeout is used before the world size is known
        self.sizes: ParallelSizes = init_distributed(
            cfg.parallel, seed=cfg.train.seed, timeout_s=cfg.train.collective_timeout_s
        )
        cfg.validate(dist.get_world_size())
        from megatron.core import parallel_state as ps

        self.ps = ps
        self.objective = objective or objective_named(cfg.train.objective, cfg)
        self.run_dir = Path(cfg.run_dir)
        self.rank = dist.get_rank()
        self.bf16 = cfg.train.precision == "bf16" or (
            cfg.train.precision == "auto"
            and torch.cuda.is_available()
            and torch.cuda.is_bf16_supported()
        )
        torch.manual_seed(cfg.train.seed)
        self.stream = self.objective.open_data(cfg, self.args)
        self._build_model()
        self._time_gradient_reduction()
        self.start_step = 0
        self.tokens_seen = 0
        self.peak = cfg.train.peak_flops or device_peak_flops(self.bf16)
        if self.rank == 0:
            self._remove_stale_temporaries()
        self._resume_or_init()
        self.saver = ckpt.saver_for(cfg.checkpoint)
        self.stragglers = StragglerDetector(cfg.logging.straggler_factor)

    def _build_model(self) -> None:
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.distributed.finalize_model_grads import finalize_model_grads
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.transformer.module import Float16Module

        s, o = self.sizes, self.cfg.optimizer
        # FSDP keeps fp32 parameters (the master weights) and computes in bf16 by its own
        # mixed-precision policy; Megatron's DDP path holds bf16 parameters in Float16Module.
        opts = ModelOptions(
            bf16=self.bf16 and s.fsdp == 1,
            activation_checkpointing=self.cfg.train.activation_checkpointing,
            init_std=self.cfg.model.init_std,
            fused_swiglu=self.cfg.train.fused_swiglu,
            fused_cross_entropy=self.bf16
            if self.cfg.train.fused_cross_entropy is None
            else self.cfg.train.fused_cross_entropy,
        )
        self.tconfig = transformer_config(
            self.args,
            tp=s.tp,
            pp=s.pp,
            vpp=s.vpp if s.vpp > 1 else None,
            cp=s.cp,
            sequence_parallel=s.sequence_parallel,
            first_stage_layers=s.first_stage_layers,
            last_stage_layers=s.last_stage_layers,
            options=opts,
        )
        chunks = build_model_chunks(self.args, self.tconfig, self.objective.head(self.args))
        if self.cfg.model.init == "plain" or self.cfg.model.load:
            self._load_initial_weights(chunks)
        for chunk in chunks:
            for name, p in chunk.named_parameters():
                p.requires_grad_(self.objective.trains(name))
        if self.bf16 and s.fsdp == 1:
            chunks = [Float16Module(self.tconfig, c) for c in chunks]
        if s.fsdp > 1:
            self._wrap_fsdp(chunks)
            self.checkpoints: CheckpointBackend = checkpoint_backend(
                "fsdp", self.model, self.optimizer, self.args
            )
            return
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True,
            overlap_grad_reduce=False,
            use_distributed_optimizer=True,
            check_for_nan_in_grad=False,
            bucket_size=None,
        )
        self.model = [
            DistributedDataParallel(self.tconfig, ddp_config, c, disable_bucketing=i > 0)
            for i, c in enumerate(chunks)
        ]
        self.tconfig.no_sync_func = [m.no_sync for m in self.model]
        if len(self.model) == 1:
            self.tconfig.no_sync_func = self.tconfig.no_sync_func[0]
        self.tconfig.finalize_model_grads_func = finalize_model_grads
        self.optimizer = get_megatron_optimizer(
            OptimizerConfig(
                optimizer="adam",
                lr=o.lr,
                min_lr=o.lr * o.min_lr_ratio,
                weight_decay=o.weight_decay,
                adam_beta1=o.beta1,
                adam_beta2=o.beta2,
                adam_eps=o.eps,
                clip_grad=o.clip_grad,
                bf16=self.bf16,
                params_dtype=torch.float32,
                use_distributed_optimizer=True,
            ),
            self.model,
        )
        self.checkpoints = checkpoint_backend("megatron", self.model, self.optimizer, self.args)

    def _time_gradient_reduction(self) -> None:
        """Note when this rank reaches the gradient reduction (for straggler detection)."""
        reduce = self.tconfig.finalize_model_grads_func
        self._reached_reduction = 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            self._reached_reduction = time.perf_counter()
            return reduce(*args, **kwargs)

        self.tconfig.finalize_model_grads_func = timed

    def _wrap_fsdp(self, chunks) -> None:
        from l3_core.parallel import fsdp

        o = self.cfg.optimizer
        group = self.ps.get_data_parallel_group(with_context_parallel=True)
        roles = fsdp.TensorParallelRoles.of(chunks[0])  # before FSDP replaces the parameters
        self.model = [fsdp.shard_model(c, group, bf16=self.bf16) for c in chunks]
        self.tconfig.no_sync_func = fsdp.no_sync
        self.tconfig.finalize_model_grads_func = partial(
            fsdp.finalize_grads,
            group=group,
            roles=roles,
            tp_group=self.ps.get_tensor_model_parallel_group(),
        )
        self.optimizer = fsdp.FsdpOptimizer(
            self.model[0],
            o.lr,
            o.weight_decay,
            (o.beta1, o.beta2),
            o.eps,
            o.clip_grad,
            roles=roles,
            tp_rank=self.ps.get_tensor_model_parallel_rank(),
        )

    def _load_initial_weights(self, chunks) -> None:
        from l3_core.checkpoint.megatron import load_plain_into_chunks

        if self.cfg.model.load:
            from l3_core.checkpoint import load_checkpoint

            plain = load_checkpoint(self.cfg.model.load, dtype=torch.float32)
            ckpt.check_same_model(plain.args, self.args, self.cfg.model.load)
        else:
            from l3_core.model import Transformer

            plain = Transformer.build(self.args, seed=self.cfg.train.seed)
        state = plain.state_dict()
        load_plain_into_chunks(
            chunks,
            state.__getitem__,
            self.args,
            self.ps.get_tensor_model_parallel_rank(),
            self.ps.get_tensor_model_parallel_world_size(),
        )

    def _remove_stale_temporaries(self) -> None:
        # What a process killed mid-write (kill -9, a lost node) left beside the run's files.
        for directory in (self.run_dir, self.run_dir / "checkpoints"):
            for p in remove_stale_temporaries(directory):
                log.warning("removed %s, left by an interrupted write", p)

    def _resume_or_init(self) -> None:
        found = (
            ckpt.read_newest_intact(self.run_dir, self.args) if self.cfg.checkpoint.resume else None
        )
        if found is None:
            if self.rank == 0 and (self.run_dir / "metrics.jsonl").exists():
                truncate_metrics(self.run_dir, 0)
            return
        path, restore, state = found
        fp = self.stream.tokenizer
        if state.get("tokenizer") and state["tokenizer"] != fp:
            raise CheckpointError(
                f"{path}: written for data with tokenizer {state['tokenizer']!r}, but "
                f"{self.stream.where} has {fp!r}"
            )
        restore(self.checkpoints)
        self.stream.load_state_dict(state["data"])
        torch.set_rng_state(torch.tensor(state["rng"]["torch"], dtype=torch.uint8))
        np.random.set_state(tuple(state["rng"]["numpy"]))
        random.setstate(
            tuple(tuple(x) if isinstance(x, list) else x for x in state["rng"]["python"])
        )
        self.start_step = int(state["step"])
        self.tokens_seen = int(state.get("tokens", 0))
        if self.rank == 0:
            truncate_metrics(self.run_dir, self.start_step)
        log.info("resumed from %s at step %d", path, self.start_step)

    # -- one step ------------------------------------------------------------------------------

    def _layout(self) -> Layout:
        ps, s = self.ps, self.sizes
        return Layout(
            dp=s.dp,
            dp_rank=ps.get_data_parallel_rank(),
            cp=s.cp,
            cp_rank=ps.get_context_parallel_rank() if s.cp > 1 else 0,
            micro_batch_size=self.cfg.train.micro_batch_size,
            device=_device(),
        )

    def forward_backward(self, batch: Any, forward_only: bool) -> StepResult:
        """Run the schedule on the global ``batch``; the loss and metric sums over all ranks."""
        from megatron.core.pipeline_parallel import get_forward_backward_func

        objective = self.objective
        micro = objective.micro_batches(batch, self._layout())
        iters = [iter(micro) for _ in self.model]
        fb = get_forward_backward_func()
        reports = fb(
            forward_step_func=partial(_forward_step, objective),
            data_iterator=iters if len(iters) > 1 else iters[0],
            model=self.model if len(self.model) > 1 else self.model[0],
            num_microbatches=len(micro),
            seq_length=objective.sequence_length(batch),
            micro_batch_size=self.cfg.train.micro_batch_size,
            forward_only=forward_only,
        )
        names = objective.metric_names
        total = torch.zeros(2 + len(names), dtype=torch.float64, device=_device())
        if self.ps.is_pipeline_last_stage(ignore_virtual=True):
            for report in reports:
                total += report[_REPORT]
            dist.all_reduce(
                total, group=self.ps.get_data_parallel_group(with_context_parallel=True)
            )
        if self.sizes.pp > 1:
            dist.broadcast(
                total,
                src=self.ps.get_pipeline_model_parallel_last_rank(),
                group=self.ps.get_pipeline_model_parallel_group(),
            )
        values = total.tolist()
        return StepResult(values[0], values[1], dict(zip(names, values[2:])))

    def train_step(self, step: int) -> dict[str, Any]:
        cfg = self.cfg
        in_stage = step >= cfg.train.max_steps
        lr = schedule.stage_lr(step, cfg) if in_stage else schedule.learning_rate(step, cfg)
        phase = (
            "anneal" if schedule.in_anneal(step, cfg) and cfg.schedule.anneal_weights else "main"
        )
        if phase != self.stream.phase:
            self.stream.set_weights(
                cfg.schedule.anneal_weights if phase == "anneal" else cfg.data.weights, phase
            )
        gbs, seq = schedule.batch_size_at(step, cfg), schedule.seq_len_at(step, cfg)
        t0 = time.perf_counter()
        batch = self.stream.next_rows(gbs, seq)
        for group in self.optimizer.param_groups:
            # Megatron's own scheduler would apply the per-group multipliers (no decay on
            # norms); our schedule does it here.
            group["lr"] = lr * group.get("lr_mult", 1.0)
            group["weight_decay"] = cfg.optimizer.weight_decay * group.get("wd_mult", 1.0)
        for m in self.model:
            if hasattr(m, "zero_grad_buffer"):  # Megatron DDP; FSDP keeps grads on params
                m.zero_grad_buffer()
        self.optimizer.zero_grad()
        result = self.forward_backward(batch, forward_only=False)
        _, grad_norm, _ = self.optimizer.step()
        dt = time.perf_counter() - t0
        # Each rank's own work: until it reaches the gradient reduction, where ranks wait for
        # each other (the whole step's time is the slowest rank's on every rank).
        slow = self.stragglers.check(step + 1, self._reached_reduction - t0)
        tokens = gbs * seq
        self.tokens_seen += tokens
        tps = tokens / dt
        return {
            "step": step + 1,
            "loss": result.mean,
            "lr": lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
            "tokens_per_s": tps,
            "mfu": tps * self.args.flops_per_token(seq) / (self.peak * dist.get_world_size()),
            "seq_len": seq,
            "batch_size": gbs,
            "tokens": self.tokens_seen,
            "step_time_s": dt,
            **({"stragglers": len(slow)} if slow else {}),
            **self.objective.figures(result),
        }

    @torch.no_grad()
    def evaluate(self, seq_len: int | None = None) -> float:
        """Mean loss on the fixed validation rows (``eval_batches`` global batches).

        Evaluation always uses the base global batch size (ramps change training only).
        """
        t = self.cfg.train
        seq = seq_len or self.cfg.data.seq_len
        gbs = t.global_batch_size
        rows = self.stream.validation_rows(gbs * t.eval_batches, seq)
        for m in self.model:
            m.eval()
        loss_sum = count = 0.0
        for b in range(t.eval_batches):
            r = self.forward_backward(rows.rows(slice(b * gbs, (b + 1) * gbs)), True)
            loss_sum, count = loss_sum + r.loss_sum, count + r.count
        for m in self.model:
            m.train()
        return loss_sum / max(count, 1)

    # -- the run -------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {
            "data": self.stream.state_dict(),
            "tokens": self.tokens_seen,
            "tokenizer": self.stream.tokenizer,
            "parallel": to_dict(self.sizes),
            "config": to_dict(self.cfg),
            "rng": {
                "torch": torch.get_rng_state().tolist(),
                "numpy": [
                    v.tolist() if isinstance(v, np.ndarray) else v for v in np.random.get_state()
                ],
                "python": list(random.getstate()),
            },
        }

    def save(self, step: int) -> float:
        """Write (or, asynchronously, start writing) checkpoint ``step`` (collective); the
        seconds training was blocked."""
        t0 = time.perf_counter()
        c = self.cfg.checkpoint
        self.saver.save(self.run_dir, step, self.checkpoints, self._state(), c.keep_last)
        return time.perf_counter() - t0

    def run(self) -> list[dict[str, Any]]:
        """Train from the start (or the resumed step) to the last step; return the records."""
        cfg = self.cfg
        total = cfg.total_steps
        if self.rank == 0:
            write_json(self.run_dir / "config.json", to_dict(cfg))
        metrics = MetricsLogger(
            self.run_dir,
            total,
            self.start_step,
            enabled=self.rank == 0,
            tensorboard=cfg.logging.tensorboard,
            progress=cfg.logging.progress,
        )
        records = []
        every = cfg.checkpoint.every
        blocked = None  # by the checkpoint after the previous step; logged with the next one
        step = self.start_step
        try:
            for step in range(self.start_step, total):
                rec = self.train_step(step)
                if blocked is not None:
                    rec["checkpoint_blocked_s"], blocked = blocked, None
                done = step + 1
                if (
                    cfg.train.eval_every and done % cfg.train.eval_every == 0
                ) or done == cfg.train.max_steps:
                    rec["val_loss"] = self.evaluate()
                if self.cfg.long_context.stages and done > cfg.train.max_steps:
                    rec.update(self._stage_end_checks(done))
                if done == total and "val_loss" not in rec:
                    rec["val_loss"] = self.evaluate()
                metrics.log(rec)
                records.append(rec)
                if (every and done % every == 0) or done == total:
                    # after the step's record: a kill during the save loses no logged step
                    blocked = self.save(done)
                    log.info("checkpoint %d blocked training for %.3f s", done, blocked)
            self.saver.wait()  # the last checkpoint is complete when run() returns
        except Exception as e:
            if dist.get_world_size() > 1 and failures.came_from_collective(e):
                timeout = cfg.train.collective_timeout_s
                raise failures.diagnose(e, step + 1, timeout, min(timeout, _GRACE_S)) from e
            raise
        finally:
            metrics.close()
        if self.rank == 0 and cfg.logging.plot:
            plot_loss_curve(self.run_dir)
        return records

    def _stage_end_checks(self, done: int) -> dict[str, Any]:
        from l3_core.train.long_context import stage_end_checks

        return stage_end_checks(self, done)


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


#: how long the ranks whose collective failed wait for the others at the failure check
_GRACE_S = 60.0
_REPORT = "l3 sums"  # Megatron keeps each micro-batch's report under a key of ours


def _forward_step(objective: Objective, data_iterator, model):
    micro = next(data_iterator)
    return objective.forward(model, micro), partial(_loss_func, objective, micro)


def _loss_func(objective: Objective, micro, output_tensor: torch.Tensor):
    parts = objective.loss(micro, output_tensor)
    report = torch.stack(
        [
            parts.loss_sum.detach().double(),
            parts.count.double(),
            *(parts.metrics[n].detach().double() for n in objective.metric_names),
        ]
    )
    return parts.loss_sum, parts.count.to(torch.int), {_REPORT: report}
