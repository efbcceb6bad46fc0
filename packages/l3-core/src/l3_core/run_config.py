"""The trainer's run configuration: one TOML file, layered tables, ``--set a.b=c`` overrides.

This is a contract of the torch-free base: other packages (l3-scaling's sweeps) build a
:class:`RunConfig` and write it with :func:`write_run_config`; the trainer reads it back with
:func:`load_run_config`. Unknown keys are rejected by :func:`l3_core.config.load_config`;
:meth:`RunConfig.validate` checks the values that only make sense together (parallel sizes
against the model and the sequence length, ramps against the batch sizes) and names the value
and what it must be.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from l3_core.args import ModelArgs
from l3_core.config import dump_toml, load_config
from l3_core.errors import ConfigError
from l3_core.io import atomic_write


@dataclass
class ModelConfig:
    """A preset plus overrides of any :class:`ModelArgs` field."""

    preset: str = "llama3-tiny"
    dim: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    vocab_size: int | None = None
    multiple_of: int | None = None
    ffn_dim_multiplier: float | None = None
    norm_eps: float | None = None
    rope_theta: float | None = None
    max_seq_len: int | None = None
    tie_embeddings: bool | None = None
    # "plain": materialise the plain model (seeded) on every rank and shard it, so every
    # split starts from identical weights; "megatron": Megatron's own initialisation (large
    # models, where a full copy per rank does not fit).
    init: Literal["plain", "megatron"] = "plain"
    init_std: float = 0.02
    # Start from these weights (an HF or l3 checkpoint directory) instead of initialising.
    load: str | None = None

    def args(self) -> ModelArgs:
        overrides = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(ModelArgs)
            if hasattr(self, f.name) and getattr(self, f.name) is not None
        }
        return ModelArgs.from_preset(self.preset, **overrides)


@dataclass
class DataConfig:
    # A token-shard directory (l3_core.shards) or "builtin:stdlib" for the built-in corpus.
    path: str = "builtin:stdlib"
    seq_len: int = 128
    # Sampling weight per source name; sources left out get weight 0 when any is given.
    weights: dict[str, float] = field(default_factory=dict)
    # Validation shards; None = the built-in corpus's validation split for "builtin:stdlib",
    # otherwise documents held out of ``path`` (``val_fraction``, a seed-independent choice).
    val_path: str | None = None
    val_fraction: float = 0.02
    # Stop attention across documents of a packed sequence (and restart positions).
    document_mask: bool = True
    # The tokenizer the model uses (a tokenizer.model file): shards written by another
    # tokenizer are refused at start-up.
    tokenizer: str | None = None


@dataclass
class TrainConfig:
    max_steps: int = 100
    seed: int = 0
    global_batch_size: int = 8
    micro_batch_size: int = 2
    eval_every: int = 50
    eval_batches: int = 2
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    activation_checkpointing: bool = False
    # Megatron-core's native fused kernels (no Transformer Engine). The SwiGLU fusion computes
    # the same numbers. The cross-entropy fusion rounds the logits' gradient to bf16 whatever
    # their dtype: exact in bf16 (where the unfused path rounds the same gradient to the bf16
    # logits), 2^-9 relative in fp32; unset = on in bf16, off in fp32.
    fused_swiglu: bool = False
    fused_cross_entropy: bool | None = None
    # Peak FLOP/s of one device for MFU; 0 = the device's known peak (H100/H200 bf16) or, on
    # a CPU, a measured matmul rate.
    peak_flops: float = 0.0
    # What is optimised: a name registered with l3_core.train.objective.register_objective
    # ("lm", the packed-stream language-model loss, unless a package registers others).
    objective: str = "lm"
    # Seconds a collective may wait for the other ranks before it fails (every process group
    # of the job); the failure names the group, the operation and the ranks that did not arrive.
    collective_timeout_s: float = 1800.0


@dataclass
class OptimizerConfig:
    lr: float = 3e-4
    min_lr_ratio: float = 0.01  # the cosine ends at lr * min_lr_ratio (paper: 8e-5 -> 8e-7)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    clip_grad: float = 1.0


@dataclass
class ScheduleConfig:
    warmup_steps: int = 10
    # Steps of the cosine decay; 0 = up to the start of the annealing phase.
    decay_steps: int = 0
    # The final annealing: the last ``anneal_steps`` steps (or, when 0, the last
    # ``anneal_fraction`` of ``train.max_steps``) decay the LR linearly to 0 while the data mix
    # uses ``anneal_weights`` (upsampling high-quality sources).
    anneal_steps: int = 0
    anneal_fraction: float = 0.0
    anneal_weights: dict[str, float] = field(default_factory=dict)
    # Ramps: [[from_step, value], ...] in increasing step order (paper: 4K then 8K sequences,
    # batch doubling); empty = constant.
    batch_ramp: list[list[int]] = field(default_factory=list)
    seq_ramp: list[list[int]] = field(default_factory=list)


@dataclass
class LongContextStage:
    seq_len: int
    steps: int


@dataclass
class LongContextConfig:
    # Continued pre-training stages after ``train.max_steps``, each with its own sequence
    # length; at the end of each stage the needle-in-a-haystack check and the short-context
    # validation loss are logged (paper section 3.4.2).
    stages: list[LongContextStage] = field(default_factory=list)
    needle_trials: int = 4


@dataclass
class CheckpointConfig:
    every: int = 0  # 0 = only at the end
    keep_last: int = 3
    resume: bool = True  # resume from the newest checkpoint in run_dir when there is one
    # "plain": gathered to rank 0 as safetensors; "dcp": every rank writes its own shards
    format: Literal["plain", "dcp"] = "plain"
    # dcp only: shards are written in the background while training goes on
    async_save: bool = False


@dataclass
class LoggingConfig:
    tensorboard: bool = True
    progress: bool = True
    plot: bool = True
    # warn when a rank's step takes this many times the median rank's; 0 = off
    straggler_factor: float = 2.0


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
                f"the world size {world_size}"
            )
        dp = self.dp or world_size // model
        if model * dp != world_size:
            raise ConfigError(
                f"parallel.dp = {self.dp}: tp*cp*pp*dp = {model * dp} must equal the world size "
                f"{world_size} (set parallel.dp = {world_size // model} or 0)"
            )
        if self.fsdp > 1 and self.fsdp != dp:
            raise ConfigError(
                f"parallel.fsdp = {self.fsdp}: fully sharded data parallelism shards over the "
                f"whole data-parallel group, so it must be 1 or equal dp = {dp}"
            )
        if self.fsdp > 1 and (self.pp > 1 or self.cp > 1):
            raise ConfigError(
                f"parallel.fsdp = {self.fsdp} is supported with cp = pp = 1 here "
                f"(got cp={self.cp}, pp={self.pp})"
            )
        if self.vpp > 1 and self.pp == 1:
            raise ConfigError(f"parallel.vpp = {self.vpp} needs parallel.pp > 1")
        return dataclasses.replace(
            self, dp=dp, sequence_parallel=self.sequence_parallel and self.tp > 1
        )


@dataclass
class RunConfig:
    run_dir: str = "runs/default"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    long_context: LongContextConfig = field(default_factory=LongContextConfig)
    parallel: ParallelSizes = field(default_factory=ParallelSizes)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def to_toml(self) -> str:
        """This config as TOML that :func:`load_run_config` reads back equal."""
        return dump_toml(self)

    @property
    def anneal_steps(self) -> int:
        s = self.schedule
        return s.anneal_steps or round(s.anneal_fraction * self.train.max_steps)

    @property
    def total_steps(self) -> int:
        return self.train.max_steps + sum(s.steps for s in self.long_context.stages)

    def validate(self, world_size: int) -> ParallelSizes:
        """Check every value's range (:data:`RANGES`) and the values that depend on each other;
        return the resolved parallel sizes."""
        self.check_values()
        p = self.parallel.resolve(world_size)
        args = self.model.args()
        t = self.train
        _check(
            args.n_heads % p.tp == 0,
            f"parallel.tp = {p.tp} must divide model n_heads = {args.n_heads}",
        )
        _check(
            args.kv_heads % p.tp == 0,
            f"parallel.tp = {p.tp} must divide model n_kv_heads = {args.kv_heads}",
        )
        _check(
            args.vocab_size % p.tp == 0,
            f"parallel.tp = {p.tp} must divide model vocab_size = {args.vocab_size}",
        )
        _check(
            args.ffn_hidden_dim % p.tp == 0,
            f"parallel.tp = {p.tp} must divide the FFN width {args.ffn_hidden_dim}",
        )
        uneven = [n for n in (p.first_stage_layers, p.last_stage_layers) if n]
        if uneven:
            middle_layers = args.n_layers - sum(uneven)
            middle_stages = p.pp - len(uneven)
            _check(
                p.pp > len(uneven) - 1
                and middle_layers >= 0
                and (middle_layers % middle_stages == 0 if middle_stages else middle_layers == 0),
                f"parallel.first_stage_layers/last_stage_layers = {p.first_stage_layers}/"
                f"{p.last_stage_layers}: the other {middle_layers} of n_layers = "
                f"{args.n_layers} must split evenly over the other {middle_stages} stages",
            )
            _check(
                all(n % p.vpp == 0 for n in uneven)
                and (not middle_stages or (middle_layers // middle_stages) % p.vpp == 0),
                f"parallel.vpp = {p.vpp} must divide the layers of every pipeline stage",
            )
        else:
            stages = p.pp * p.vpp
            _check(
                args.n_layers % stages == 0,
                f"parallel.pp * vpp = {stages} must divide model n_layers = {args.n_layers}",
            )
        for name, seq in self._seq_lens():
            _check(
                seq % (2 * p.cp * p.tp) == 0 if p.cp > 1 else seq % p.tp == 0,
                f"{name} = {seq} must be divisible by "
                f"{'2 * cp * tp = ' + str(2 * p.cp * p.tp) if p.cp > 1 else 'tp = ' + str(p.tp)}",
            )
            _check(
                seq <= args.max_seq_len or name.startswith("long_context"),
                f"{name} = {seq} exceeds model max_seq_len = {args.max_seq_len}",
            )
        for name, gbs in self._batch_sizes():
            per = t.micro_batch_size * p.dp
            _check(
                gbs % per == 0,
                f"{name} = {gbs} must be a multiple of micro_batch_size * dp = {per}",
            )
            if p.vpp > 1:
                _check(
                    (gbs // per) % p.pp == 0,
                    f"{name} = {gbs}: the interleaved schedule needs the number of "
                    f"micro-batches ({gbs // per}) to be a multiple of pp = {p.pp}",
                )
        _check(
            self.schedule.anneal_steps <= t.max_steps,
            f"schedule.anneal_steps = {self.schedule.anneal_steps} must be <= train.max_steps "
            f"= {t.max_steps} (or use schedule.anneal_fraction)",
        )
        return p

    def check_values(self) -> None:
        """Check the shape of the ramps and every field of :data:`RANGES` (no world size needed)."""
        for name in ("batch_ramp", "seq_ramp"):
            ramp = getattr(self.schedule, name)
            for i, item in enumerate(ramp):
                _check(
                    len(item) == 2, f"schedule.{name}[{i}] = {item}: expected [from_step, value]"
                )
            steps = [s for s, _ in ramp]
            _check(steps == sorted(steps), f"schedule.{name}: steps {steps} must increase")
        check_ranges(self, RANGES)

    def _seq_lens(self):
        yield "data.seq_len", self.data.seq_len
        for i, (_, v) in enumerate(self.schedule.seq_ramp):
            yield f"schedule.seq_ramp[{i}]", v
        for i, s in enumerate(self.long_context.stages):
            yield f"long_context.stages[{i}].seq_len", s.seq_len

    def _batch_sizes(self):
        yield "train.global_batch_size", self.train.global_batch_size
        for i, (_, v) in enumerate(self.schedule.batch_ramp):
            yield f"schedule.batch_ramp[{i}]", v


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


@dataclass(frozen=True)
class Range:
    """The finite numbers a field may hold: ``low`` to ``high`` (None = unbounded), each end
    included unless its ``*_open`` flag says otherwise."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {_num(self.low)}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {_num(self.high)}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"


def _num(x: float | None) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


POSITIVE = Range(0, low_open=True)
AT_LEAST_1 = Range(1)
NON_NEGATIVE = Range(0)
FRACTION = Range(0, 1)

#: Every numeric run-config field with a meaningless range -> the values it may hold. A path
#: segment ``*`` stands for every item of a list or every value of a table; ``None`` (a model
#: field left to its preset) is always allowed.
RANGES: dict[str, Range] = {
    "model.dim": AT_LEAST_1,
    "model.n_layers": AT_LEAST_1,
    "model.n_heads": AT_LEAST_1,
    "model.n_kv_heads": AT_LEAST_1,
    "model.vocab_size": AT_LEAST_1,
    "model.multiple_of": AT_LEAST_1,
    "model.ffn_dim_multiplier": POSITIVE,
    "model.norm_eps": POSITIVE,
    "model.rope_theta": POSITIVE,
    "model.max_seq_len": AT_LEAST_1,
    "model.init_std": POSITIVE,
    "data.seq_len": AT_LEAST_1,
    "data.weights.*": NON_NEGATIVE,
    "data.val_fraction": Range(0, 1, high_open=True),
    "train.max_steps": NON_NEGATIVE,
    "train.seed": Range(0, 2**32 - 1),  # numpy's seeds
    "train.global_batch_size": AT_LEAST_1,
    "train.micro_batch_size": AT_LEAST_1,
    "train.eval_every": NON_NEGATIVE,
    "logging.straggler_factor": NON_NEGATIVE,  # 0 = only at the end of the run
    "train.eval_batches": AT_LEAST_1,
    "train.peak_flops": NON_NEGATIVE,  # 0 = the device's known or measured peak
    "train.collective_timeout_s": Range(0, 7 * 24 * 3600, low_open=True),  # up to a week
    "optimizer.lr": POSITIVE,
    "optimizer.min_lr_ratio": FRACTION,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.beta1": Range(0, 1, high_open=True),
    "optimizer.beta2": Range(0, 1, high_open=True),
    "optimizer.eps": POSITIVE,
    "optimizer.clip_grad": NON_NEGATIVE,  # 0 = no clipping
    "schedule.warmup_steps": NON_NEGATIVE,
    "schedule.decay_steps": NON_NEGATIVE,
    "schedule.anneal_steps": NON_NEGATIVE,
    "schedule.anneal_fraction": FRACTION,
    "schedule.anneal_weights.*": NON_NEGATIVE,
    "schedule.batch_ramp.*.0": NON_NEGATIVE,
    "schedule.batch_ramp.*.1": AT_LEAST_1,
    "schedule.seq_ramp.*.0": NON_NEGATIVE,
    "schedule.seq_ramp.*.1": AT_LEAST_1,
    "long_context.stages.*.seq_len": AT_LEAST_1,
    "long_context.stages.*.steps": AT_LEAST_1,
    "long_context.needle_trials": NON_NEGATIVE,
    "parallel.tp": AT_LEAST_1,
    "parallel.cp": AT_LEAST_1,
    "parallel.pp": AT_LEAST_1,
    "parallel.vpp": AT_LEAST_1,
    "parallel.dp": NON_NEGATIVE,  # 0 = what the world size leaves
    "parallel.fsdp": AT_LEAST_1,
    "parallel.first_stage_layers": NON_NEGATIVE,
    "parallel.last_stage_layers": NON_NEGATIVE,
    "checkpoint.every": NON_NEGATIVE,  # 0 = only at the end
    "checkpoint.keep_last": AT_LEAST_1,
}


def check_ranges(
    node: Any,
    ranges: Mapping[str, Range],
    error: type[ConfigError] = ConfigError,
    prefix: str = "",
) -> None:
    """Every value that a dotted path of ``ranges`` reaches from ``node`` (``*``: every item of
    a list or table) is None or in its range; else ``error`` naming the field and the value.
    ``prefix`` names ``node`` itself in the message (e.g. ``"train"`` for a config's table)."""
    for path, allowed in ranges.items():
        for name, value in _values_at(node, path.split("."), prefix):
            if value is not None and not allowed.allows(value):
                raise error(f"{name} = {value!r}: must be {allowed}")


def _values_at(node: Any, path: list[str], name: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted name, value)`` of every value that ``path`` reaches from ``node``."""
    if not path:
        yield name, node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            sub = f"{name}[{key}]" if isinstance(key, int) else f"{name}.{key}"
            yield from _values_at(child, rest, sub)
    elif head.isdigit():
        yield from _values_at(node[int(head)], rest, f"{name}[{head}]")
    else:
        yield from _values_at(getattr(node, head), rest, f"{name}.{head}" if name else head)


def load_run_config(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Read a run TOML with ``--set`` overrides (unknown keys are errors)."""
    cfg = load_config(RunConfig, path, overrides)
    try:
        cfg.check_values()
        cfg.model.args()  # unknown preset / bad shape fails here, at start-up
    except ConfigError as e:
        raise type(e)(f"{path}: {e}" if path is not None else str(e)) from None
    return cfg


def write_run_config(path: str | Path, cfg: RunConfig) -> Path:
    """Write ``cfg`` as a run TOML (atomically) for ``l3-core train --config``; return the path."""
    path = Path(path)
    text = cfg.to_toml()
    with atomic_write(path, encoding="utf-8") as f:
        f.write(text)
    return path
