"""The run config of ``l3-align sft``, ``dpo`` and ``rm``: TOML tables ``[train]``, ``[data]``,
``[dpo]``, ``[rm]`` and ``[parallel]`` (l3-core's parallel sizes: ``--set parallel.tp=2`` under
``torchrun`` or ``--nproc``), every key reachable with ``--set table.key=value``. The trainer's
own config (:class:`l3_core.run_config.RunConfig`) is built from it by
:func:`l3_align.train.job.trainer_config`."""

from __future__ import annotations

from dataclasses import dataclass, field

from l3_align.errors import AlignConfigError
from l3_core.run_config import (
    AT_LEAST_1,
    NON_NEGATIVE,
    POSITIVE,
    ParallelSizes,
    Range,
    check_ranges,
)

#: The numeric fields of each table -> the values they may hold (ranges as data).
TRAIN_RANGES: dict[str, Range] = {
    "max_steps": AT_LEAST_1,
    "lr": POSITIVE,
    "warmup_steps": NON_NEGATIVE,
    "weight_decay": NON_NEGATIVE,
    "beta1": Range(0, 1, high_open=True),
    "beta2": Range(0, 1, high_open=True),
    "eps": POSITIVE,
    "clip_grad": NON_NEGATIVE,  # 0 = no clipping
    "batch_rows": AT_LEAST_1,
    "micro_batch_rows": AT_LEAST_1,
    "seed": Range(0, 2**32 - 1),
    "eval_every": NON_NEGATIVE,
    "checkpoint_every": NON_NEGATIVE,
    "keep_last": AT_LEAST_1,
}
DPO_RANGES: dict[str, Range] = {
    "beta": POSITIVE,
    "label_smoothing": Range(0, 0.5, high_open=True),
    "simpo_beta": POSITIVE,
    "simpo_gamma": NON_NEGATIVE,
    "reference_batch_rows": AT_LEAST_1,
}


@dataclass
class TrainConfig:
    max_steps: int = 100
    lr: float = 1e-5  # the paper's DPO learning rate
    warmup_steps: int = 0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    clip_grad: float = 1.0
    batch_rows: int = 8  # packed rows per optimizer step (over all data-parallel ranks)
    micro_batch_rows: int = 8  # packed rows per forward pass of one rank
    seed: int = 0
    eval_every: int = 0  # 0: evaluate at the last step only
    checkpoint_every: int = 0  # 0: no intermediate checkpoints
    keep_last: int = 2
    resume: bool = True
    # recompute each layer in the backward pass instead of keeping its activations (l3-core's
    # trainer): less memory for about one more forward pass
    activation_checkpointing: bool = False

    def validate(self) -> None:
        check_ranges(self, TRAIN_RANGES, AlignConfigError, prefix="train")
        if self.batch_rows % self.micro_batch_rows:
            raise AlignConfigError(
                f"train.batch_rows = {self.batch_rows} must be a multiple of "
                f"train.micro_batch_rows = {self.micro_batch_rows}"
            )


@dataclass
class DataConfig:
    seq_len: int = 0  # 0: the model's max_seq_len
    truncation: str = "reject"  # reject | keep_start | keep_end


@dataclass
class DPOConfig:
    beta: float = 0.1
    # loss name -> weight; the paper: sigmoid DPO plus 0.2 x NLL on the chosen response
    losses: dict[str, float] = field(default_factory=lambda: {"sigmoid": 1.0, "nll": 0.2})
    label_smoothing: float = 0.0
    simpo_beta: float = 2.0
    simpo_gamma: float = 0.5
    mask_special_tokens: bool = True
    use_edited: bool = True
    reference: str = ""  # reference checkpoint directory; "" = the starting policy
    reference_cache: str = ""  # "" = beside the data: <data>.reference-logps.safetensors
    recompute_reference: bool = False
    reference_batch_rows: int = 16

    def validate(self) -> None:
        from l3_align.dpo.losses import PREFERENCE_LOSSES

        check_ranges(self, DPO_RANGES, AlignConfigError, prefix="dpo")
        if not self.losses:
            raise AlignConfigError("dpo.losses is empty; e.g. {sigmoid = 1.0, nll = 0.2}")
        for name, weight in self.losses.items():
            if name not in PREFERENCE_LOSSES:
                raise AlignConfigError(
                    f"dpo.losses.{name}: unknown loss; known: {', '.join(sorted(PREFERENCE_LOSSES))}"
                )
            if not NON_NEGATIVE.allows(weight):
                raise AlignConfigError(f"dpo.losses.{name} = {weight!r}: must be {NON_NEGATIVE}")


@dataclass
class RewardConfig:
    loss: str = "ranking"  # a name in l3_align.rm.losses.PAIRS

    def validate(self) -> None:
        from l3_align.rm.losses import PAIRS

        if self.loss not in PAIRS:
            raise AlignConfigError(
                f"rm.loss = {self.loss!r}: known losses are {', '.join(sorted(PAIRS))}"
            )


@dataclass
class AlignConfig:
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    dpo: DPOConfig = field(default_factory=DPOConfig)
    rm: RewardConfig = field(default_factory=RewardConfig)
    parallel: ParallelSizes = field(default_factory=ParallelSizes)

    def validate(self) -> None:
        from l3_align.data.encode import truncation_named

        self.train.validate()
        self.dpo.validate()
        self.rm.validate()
        truncation_named(self.data.truncation)
        if self.data.seq_len < 0:
            raise AlignConfigError(f"data.seq_len = {self.data.seq_len} must be 0 or positive")
