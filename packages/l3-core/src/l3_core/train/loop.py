"""The training loop on Megatron-core: one code path for one process and for N.

Every rank reads the same deterministic stream of packed rows and keeps its own slice:
its data-parallel rows, split into micro-batches, and its context-parallel columns. Megatron's
schedules run forward and backward (no pipelining, 1F1B, or interleaved 1F1B with virtual
stages), its DDP reduces gradients and its distributed optimizer (ZeRO-1) steps. The loss is a
sum over tokens divided by the global token count, so every split computes the same number.
"""

from __future__ import annotations

import logging
import math
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
from l3_core.errors import CheckpointError, ConfigError
from l3_core.io import write_json
from l3_core.parallel.attention import cp_chunk_indices
from l3_core.parallel.groups import ParallelSizes, init_distributed
from l3_core.parallel.model import ModelOptions, build_model_chunks, transformer_config
from l3_core.run_config import RunConfig
from l3_core.shards import ShardDataset
from l3_core.train import checkpoint as ckpt
from l3_core.train import schedule
from l3_core.train.data import Batch, PackedStream, resolve_data_path
from l3_core.train.metrics import MetricsLogger, plot_loss_curve, truncate_metrics
from l3_core.train.peak import device_peak_flops

log = logging.getLogger(__name__)


class Trainer:
    """Builds everything from a :class:`RunConfig`; :meth:`run` trains to the end."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.args: ModelArgs = cfg.model.args()
        self.sizes: ParallelSizes = init_distributed(cfg.parallel, seed=cfg.train.seed)
        cfg.validate(dist.get_world_size())
        from megatron.core import parallel_state as ps

        self.ps = ps
        self.run_dir = Path(cfg.run_dir)
        self.rank = dist.get_rank()
        self.bf16 = cfg.train.precision == "bf16" or (
            cfg.train.precision == "auto" and torch.cuda.is_available()
            and torch.cuda.is_bf16_supported())
        torch.manual_seed(cfg.train.seed)
        self._open_data()
        self._build_model()
        self.start_step = 0
        self.tokens_seen = 0
        self.peak = cfg.train.peak_flops or device_peak_flops(self.bf16)
        self._resume_or_init()

    # -- set-up --------------------------------------------------------------------------------

    def _open_data(self) -> None:
        d = self.cfg.data
        path = resolve_data_path(d.path)
        expect = None
        if d.tokenizer:
            from l3_core.tokenizer import Tokenizer

            expect = Tokenizer.from_file(d.tokenizer).fingerprint()
        self.dataset = ShardDataset(path, expect_tokenizer=expect,
                                    expect_vocab_size=self.args.vocab_size)
        val_path = d.val_path or (resolve_data_path(d.path, "val")
                                  if d.path == "builtin:stdlib" else None)
        val = ShardDataset(val_path, expect_tokenizer=self.dataset.manifest["tokenizer"],
                           expect_vocab_size=self.args.vocab_size) if val_path else None
        self.stream = PackedStream(self.dataset, self.cfg.train.seed, d.weights, d.val_fraction,
                                   val)

    def _build_model(self) -> None:
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.distributed.finalize_model_grads import finalize_model_grads
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.transformer.module import Float16Module

        s, o = self.sizes, self.cfg.optimizer
        opts = ModelOptions(bf16=self.bf16,
                            activation_checkpointing=self.cfg.train.activation_checkpointing,
                            init_std=self.cfg.model.init_std,
                            fused_swiglu=self.cfg.train.fused_swiglu,
                            fused_cross_entropy=self.cfg.train.fused_cross_entropy)
        self.tconfig = transformer_config(
            self.args, tp=s.tp, pp=s.pp, vpp=s.vpp if s.vpp > 1 else None, cp=s.cp,
            sequence_parallel=s.sequence_parallel, first_stage_layers=s.first_stage_layers,
            last_stage_layers=s.last_stage_layers, options=opts)
        chunks = build_model_chunks(self.args, self.tconfig)
        self.raw_chunks = chunks
        if self.cfg.model.init == "plain" or self.cfg.model.load:
            self._load_initial_weights(chunks)
        if self.bf16:
            chunks = [Float16Module(self.tconfig, c) for c in chunks]
        if s.fsdp > 1:
            self._wrap_fsdp(chunks)
            return
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=False, use_distributed_optimizer=True,
            check_for_nan_in_grad=False, bucket_size=None)
        self.model = [DistributedDataParallel(self.tconfig, ddp_config, c,
                                              disable_bucketing=i > 0)
                      for i, c in enumerate(chunks)]
        self.tconfig.no_sync_func = [m.no_sync for m in self.model]
        if len(self.model) == 1:
            self.tconfig.no_sync_func = self.tconfig.no_sync_func[0]
        self.tconfig.finalize_model_grads_func = finalize_model_grads
        self.optimizer = get_megatron_optimizer(
            OptimizerConfig(optimizer="adam", lr=o.lr, min_lr=o.lr * o.min_lr_ratio,
                            weight_decay=o.weight_decay, adam_beta1=o.beta1, adam_beta2=o.beta2,
                            adam_eps=o.eps, clip_grad=o.clip_grad, bf16=self.bf16,
                            params_dtype=torch.float32, use_distributed_optimizer=True),
            self.model)

    def _wrap_fsdp(self, chunks) -> None:
        from l3_core.parallel import fsdp

        o = self.cfg.optimizer
        if self.bf16:
            raise ConfigError("parallel.fsdp > 1 runs in fp32 here: set train.precision = 'fp32'")
        group = self.ps.get_data_parallel_group(with_context_parallel=True)
        self.model = [fsdp.shard_model(c, group) for c in chunks]
        self.tconfig.no_sync_func = fsdp.no_sync
        self.tconfig.finalize_model_grads_func = partial(fsdp.finalize_grads, group=group)
        self.optimizer = fsdp.FsdpOptimizer(self.model[0], o.lr, o.weight_decay,
                                            (o.beta1, o.beta2), o.eps, o.clip_grad)

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
        load_plain_into_chunks(chunks, state.__getitem__, self.args,
                               self.ps.get_tensor_model_parallel_rank(),
                               self.ps.get_tensor_model_parallel_world_size())

    def _resume_or_init(self) -> None:
        path = ckpt.latest(self.run_dir) if self.cfg.checkpoint.resume else None
        if path is None:
            if self.rank == 0 and (self.run_dir / "metrics.jsonl").exists():
                truncate_metrics(self.run_dir, 0)
            return
        weights, moments, state = ckpt.read(path, self.args)
        fp = self.dataset.manifest["tokenizer"]
        if state.get("tokenizer") and state["tokenizer"] != fp:
            raise CheckpointError(
                f"{path}: written for data with tokenizer {state['tokenizer']!r}, but "
                f"{self.dataset.directory} has {fp!r}")
        ckpt.load_plain(self.model, self.optimizer, self.args, weights, moments,
                        state["adam_step"])
        self.stream.load_state_dict(state["data"])
        torch.set_rng_state(torch.tensor(state["rng"]["torch"], dtype=torch.uint8))
        np.random.set_state(tuple(state["rng"]["numpy"]))
        random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["rng"]["python"]))
        self.start_step = int(state["step"])
        self.tokens_seen = int(state.get("tokens", 0))
        if self.rank == 0:
            truncate_metrics(self.run_dir, self.start_step)
        log.info("resumed from %s at step %d", path, self.start_step)

    # -- one step ------------------------------------------------------------------------------

    def _local_micro_batches(self, batch: Batch, mbs: int) -> list[dict[str, torch.Tensor]]:
        ps, s = self.ps, self.sizes
        n = batch.tokens.shape[0] // s.dp
        dp_rank = ps.get_data_parallel_rank()
        mine = batch.rows(slice(dp_rank * n, (dp_rank + 1) * n))
        seq = batch.tokens.shape[1]
        cols = cp_chunk_indices(seq, s.cp, ps.get_context_parallel_rank() if s.cp > 1 else 0).numpy()
        dev = _device()
        out = []
        for i in range(0, n, mbs):
            mb = mine.rows(slice(i, i + mbs))
            out.append({
                "tokens": torch.from_numpy(mb.tokens[:, cols].copy()).to(dev),
                "labels": torch.from_numpy(mb.labels[:, cols].copy()).to(dev),
                "loss_mask": torch.from_numpy(mb.loss_mask[:, cols].copy()).to(dev),
                "positions": torch.from_numpy(mb.positions[:, cols].copy()).to(dev),
                "doc_ids": (torch.from_numpy(mb.doc_ids[:, cols].copy()).to(dev)
                            if self.cfg.data.document_mask else None),
            })
        return out

    def forward_backward(self, batch: Batch, forward_only: bool, with_hits: bool = False):
        """Run the schedule on ``batch``; return (loss sum, token count) over all ranks.

        ``with_hits`` adds the number of target tokens given probability above 1/2.
        """
        from megatron.core.pipeline_parallel import get_forward_backward_func

        mbs = self.cfg.train.micro_batch_size
        micro = self._local_micro_batches(batch, mbs)
        seq = batch.tokens.shape[1]
        if not self.cfg.data.document_mask:
            for m in micro:
                m["positions"] = torch.from_numpy(
                    np.broadcast_to(cp_chunk_indices(seq, self.sizes.cp,
                                                     self.ps.get_context_parallel_rank())
                                    .numpy(), m["tokens"].shape).copy()).to(_device())
        iters = [iter(micro) for _ in self.model]
        fb = get_forward_backward_func()
        losses = fb(forward_step_func=_forward_step,
                    data_iterator=iters if len(iters) > 1 else iters[0],
                    model=self.model if len(self.model) > 1 else self.model[0],
                    num_microbatches=len(micro), seq_length=seq, micro_batch_size=mbs,
                    forward_only=forward_only)
        total = torch.zeros(3, dtype=torch.float64, device=_device())
        if self.ps.is_pipeline_last_stage(ignore_virtual=True):
            for item in losses:
                total += item["lm loss"].double()
            dist.all_reduce(total, group=self.ps.get_data_parallel_group(with_context_parallel=True))
        if self.sizes.pp > 1:
            dist.broadcast(total, src=self.ps.get_pipeline_model_parallel_last_rank(),
                           group=self.ps.get_pipeline_model_parallel_group())
        if with_hits:
            return float(total[0]), float(total[1]), float(total[2])
        return float(total[0]), float(total[1])

    def train_step(self, step: int) -> dict[str, Any]:
        cfg = self.cfg
        in_stage = step >= cfg.train.max_steps
        lr = schedule.stage_lr(step, cfg) if in_stage else schedule.learning_rate(step, cfg)
        phase = "anneal" if schedule.in_anneal(step, cfg) and cfg.schedule.anneal_weights else "main"
        if phase != self.stream.phase:
            self.stream.set_weights(cfg.schedule.anneal_weights if phase == "anneal"
                                    else cfg.data.weights, phase)
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
        loss_sum, count = self.forward_backward(batch, forward_only=False)
        _, grad_norm, _ = self.optimizer.step()
        dt = time.perf_counter() - t0
        tokens = gbs * seq
        self.tokens_seen += tokens
        tps = tokens / dt
        return {"step": step + 1, "loss": loss_sum / max(count, 1), "lr": lr,
                "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
                "tokens_per_s": tps,
                "mfu": tps * self.args.flops_per_token(seq) / (self.peak * dist.get_world_size()),
                "seq_len": seq, "batch_size": gbs, "tokens": self.tokens_seen,
                "step_time_s": dt}

    @torch.no_grad()
    def evaluate(self, seq_len: int | None = None) -> float:
        """Mean token loss on the fixed validation rows (``eval_batches`` global batches).

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
            s, c = self.forward_backward(rows.rows(slice(b * gbs, (b + 1) * gbs)), True)
            loss_sum, count = loss_sum + s, count + c
        for m in self.model:
            m.train()
        return loss_sum / max(count, 1)

    # -- the run -------------------------------------------------------------------------------

    def _state(self) -> dict[str, Any]:
        return {"data": self.stream.state_dict(), "tokens": self.tokens_seen,
                "tokenizer": self.dataset.manifest["tokenizer"],
                "parallel": to_dict(self.sizes), "config": to_dict(self.cfg),
                "rng": {"torch": torch.get_rng_state().tolist(),
                        "numpy": [v.tolist() if isinstance(v, np.ndarray) else v
                                  for v in np.random.get_state()],
                        "python": list(random.getstate())}}

    def save(self, step: int) -> None:
        ckpt.save(self.run_dir, step, self.model, self.optimizer, self.args, self._state(),
                  self.cfg.checkpoint.keep_last)

    def run(self) -> list[dict[str, Any]]:
        """Train from the start (or the resumed step) to the last step; return the records."""
        cfg = self.cfg
        total = cfg.total_steps
        if self.rank == 0:
            write_json(self.run_dir / "config.json", to_dict(cfg))
        metrics = MetricsLogger(self.run_dir, total, self.start_step, enabled=self.rank == 0,
                                tensorboard=cfg.logging.tensorboard,
                                progress=cfg.logging.progress)
        records = []
        every = cfg.checkpoint.every
        try:
            for step in range(self.start_step, total):
                rec = self.train_step(step)
                done = step + 1
                if (cfg.train.eval_every and done % cfg.train.eval_every == 0) or done == cfg.train.max_steps:
                    rec["val_loss"] = self.evaluate()
                if self.cfg.long_context.stages and done > cfg.train.max_steps:
                    rec.update(self._stage_end_checks(done))
                if done == total and "val_loss" not in rec:
                    rec["val_loss"] = self.evaluate()
                metrics.log(rec)
                records.append(rec)
                if (every and done % every == 0) or done == total:
                    self.save(done)
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


def _forward_step(data_iterator, model):
    batch = next(data_iterator)
    out = model(batch["tokens"], batch["positions"], batch["doc_ids"], labels=batch["labels"])
    return out, partial(_loss_func, batch["loss_mask"])


def _loss_func(loss_mask: torch.Tensor, output_tensor: torch.Tensor):
    losses = output_tensor.float().reshape(-1)
    mask = loss_mask.reshape(-1).float()
    loss_sum = (losses * mask).sum()
    count = mask.sum()
    hits = ((losses.detach() < math.log(2)).float() * mask).sum()  # p(target) > 1/2
    return loss_sum, count.to(torch.int), {"lm loss": torch.stack([loss_sum.detach(), count, hits])}
