"""One alignment run on l3-core's trainer: files in, ``metrics.jsonl``, checkpoints and
``final/`` out, on any parallel layout.

:func:`run_job` is what every rank runs (one process, ``torchrun`` or :func:`launch`'s gloo
ranks): it prepares the model and tokenizer, builds the task's objective (SFT, DPO or the
reward model, registered in :data:`TASKS`) and trains it with :class:`l3_core.train.Trainer`.
Rank 0 then writes ``final/`` from the last checkpoint (the task's export: the l3 format, or
the reward model's ``LlamaForSequenceClassification`` directory), measures the held-out
figures with the plain model read back from ``final/`` (:mod:`l3_align.train.plain`), and
writes the exclusions, the config and ``summary.json``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from l3_align.config import AlignConfig
from l3_align.train.packed import PackedObjective
from l3_align.train.plain import one_process, step_sums
from l3_align.train.setup import RunInputs, finish_run, prepare
from l3_core.args import ModelArgs
from l3_core.config import from_dict, to_dict
from l3_core.jsonl import Exclusions, read_jsonl
from l3_core.run_config import RunConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlignJob:
    """What to run, as plain data (it crosses to spawned ranks)."""

    task: str  # a name in TASKS
    config: dict[str, Any]  # to_dict(AlignConfig)
    model_dir: str
    data: str
    run_dir: str
    eval_data: str | None = None
    tokenizer: str | None = None

    def align_config(self) -> AlignConfig:
        return from_dict(AlignConfig, self.config)


@dataclass
class Task:
    """A task built for one run: its objective, the counts for the summary, how many packed
    held-out rows it has, how ``final/`` is written from a trainer checkpoint, and the plain
    model read back from ``final/`` for the held-out figures."""

    objective: PackedObjective
    counts: dict[str, int]
    exclusions: Exclusions
    eval_rows: int
    export: Callable[[Path, Path], None]  # (checkpoint dir, final dir)
    plain: Callable[[Path], nn.Module]  # final dir -> the plain peer of the trainer's model
    has_eval: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


TaskBuilder = Callable[[AlignConfig, RunInputs, AlignJob], Task]
TASKS: dict[str, TaskBuilder] = {}


def register_task(name: str) -> Callable[[TaskBuilder], TaskBuilder]:
    def add(fn: TaskBuilder) -> TaskBuilder:
        TASKS[name] = fn
        return fn

    return add


def _load_tasks() -> None:
    import l3_align.dpo.run
    import l3_align.rm.run
    import l3_align.sft.run  # noqa: F401  (registers "sft")


def model_section(args: ModelArgs, model_dir: str) -> dict[str, Any]:
    """The trainer's ``[model]`` table for the checkpoint at ``model_dir`` (its own shape)."""
    return {
        "preset": "llama3-tiny",
        "dim": args.dim,
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "n_kv_heads": args.kv_heads,
        "vocab_size": args.vocab_size,
        "multiple_of": args.multiple_of,
        "ffn_dim_multiplier": args.ffn_dim_multiplier,
        "norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "max_seq_len": args.max_seq_len,
        "tie_embeddings": args.tie_embeddings,
        "init": "plain",
        "load": model_dir,
    }


def trainer_config(cfg: AlignConfig, inputs: RunInputs, job: AlignJob, eval_rows: int) -> RunConfig:
    """l3-core's run config for this alignment run: a constant learning rate after a linear
    warmup, fp32, the held-out rows in whole global batches."""
    t = cfg.train
    section = {
        "run_dir": job.run_dir,
        "model": {
            k: v for k, v in model_section(inputs.args, job.model_dir).items() if v is not None
        },
        "data": {"path": job.data, "seq_len": inputs.seq_len},
        "train": {
            "max_steps": t.max_steps,
            "seed": t.seed,
            "global_batch_size": t.batch_rows,
            "micro_batch_size": t.micro_batch_rows,
            "eval_every": t.eval_every,
            "eval_batches": max(1, math.ceil(eval_rows / t.batch_rows)),
            "precision": "fp32",
            "activation_checkpointing": t.activation_checkpointing,
        },
        "optimizer": {
            "lr": t.lr,
            "min_lr_ratio": 1.0,
            "weight_decay": t.weight_decay,
            "beta1": t.beta1,
            "beta2": t.beta2,
            "eps": t.eps,
            "clip_grad": t.clip_grad,
        },
        "schedule": {"warmup_steps": t.warmup_steps},
        "parallel": to_dict(cfg.parallel),
        "checkpoint": {"every": t.checkpoint_every, "keep_last": t.keep_last, "resume": t.resume},
        "logging": {"tensorboard": False, "progress": False, "plot": False},
    }
    return from_dict(RunConfig, section)


def run_job(job: AlignJob) -> dict[str, Any] | None:
    """Train ``job`` on this rank; rank 0 returns the run's summary, the others None."""
    from l3_core.train import checkpoint as ckpt
    from l3_core.train.loop import Trainer

    _load_tasks()
    cfg = job.align_config()
    inputs = prepare(cfg, Path(job.model_dir), Path(job.tokenizer) if job.tokenizer else None)
    task = TASKS[job.task](cfg, inputs, job)
    run_cfg = trainer_config(cfg, inputs, job, task.eval_rows)
    with Trainer(run_cfg, task.objective) as trainer:
        trainer.run()
        rank, source = trainer.rank, trainer.stream
    if rank != 0:
        return None
    run_dir = Path(job.run_dir)
    latest = ckpt.latest(run_dir)
    assert latest is not None  # the trainer always checkpoints its last step
    task.export(latest, run_dir / "final")
    records = read_jsonl(run_dir / "metrics.jsonl")
    last = dict(records[-1]) if records else {}
    if task.has_eval:
        last.update(held_out_figures(task, source.validation, cfg, run_dir / "final"))
    return finish_run(run_dir, cfg, task.exclusions, task.counts, last)


def held_out_figures(task: Task, rows, cfg: AlignConfig, final: Path) -> dict[str, float]:
    """``val_loss`` and the objective's figures on the held-out rows, with the plain model
    read back from ``final/`` (the trainer evaluates the loss only)."""
    net = task.plain(final)
    objective = task.objective
    result = step_sums(objective, net, objective.micro_batches(rows, one_process(8)))
    return {
        "val_loss": result.mean,
        **{f"val_{k}": v for k, v in objective.figures(result).items()},
    }


def run_task(
    task: str,
    cfg: AlignConfig,
    model_dir: str | os.PathLike[str],
    data: str | os.PathLike[str],
    run_dir: str | os.PathLike[str],
    eval_data: str | os.PathLike[str] | None = None,
    tokenizer_file: str | os.PathLike[str] | None = None,
    nproc: int = 1,
) -> dict[str, Any]:
    """Run the registered ``task`` on ``data`` from the model at ``model_dir``; the summary."""
    job = AlignJob(
        task,
        to_dict(cfg),
        str(model_dir),
        str(data),
        str(run_dir),
        str(eval_data) if eval_data else None,
        str(tokenizer_file) if tokenizer_file else None,
    )
    return launch(job, nproc)


def launch(job: AlignJob, nproc: int = 1) -> dict[str, Any]:
    """Run ``job`` in this process (also under ``torchrun``) or, with ``nproc`` > 1, on that
    many local gloo ranks; the summary rank 0 wrote."""
    import json
    import os

    from l3_core.parallel.groups import shutdown

    job.align_config().validate()  # bad config: one line here, not a failure in each rank
    if nproc > 1 and "RANK" not in os.environ:
        from l3_core.parallel.launch import spawn

        spawn(nproc, run_job, job)
        return json.loads((Path(job.run_dir) / "summary.json").read_text())
    try:
        summary = run_job(job)
    finally:
        shutdown()
    return summary if summary is not None else {}
