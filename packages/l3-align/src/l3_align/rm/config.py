"""The reward-model run's configuration (TOML, ``--set train.lr=1e-4``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from l3_align.errors import AlignConfigError
from l3_align.rm.losses import PAIRS


@dataclass
class RewardTrainSection:
    max_steps: int = 100
    lr: float = 1e-5  # the paper's post-training rate; tiny synthetic models want more
    batch_size: int = 8  # rows (each a prompt with its 2 or 3 responses) per step
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # 0 turns clipping off
    eval_every: int = 0  # steps between held-out evaluations; 0: at the end only
    seed: int = 0


@dataclass
class RewardSection:
    loss: str = "ranking"  # a name in l3_align.rm.losses.PAIRS
    shuffle_responses: bool = True  # random response order in each packed row


@dataclass
class RewardRunConfig:
    train: RewardTrainSection = field(default_factory=RewardTrainSection)
    rm: RewardSection = field(default_factory=RewardSection)

    def validate(self) -> None:
        t = self.train
        for key, value, ok in (
            ("train.max_steps", t.max_steps, t.max_steps >= 1),
            ("train.lr", t.lr, t.lr > 0),
            ("train.batch_size", t.batch_size, t.batch_size >= 1),
            ("train.weight_decay", t.weight_decay, t.weight_decay >= 0),
            ("train.grad_clip", t.grad_clip, t.grad_clip >= 0),
            ("train.eval_every", t.eval_every, t.eval_every >= 0),
        ):
            if not ok:
                raise AlignConfigError(f"{key} = {value!r} is out of range")
        if self.rm.loss not in PAIRS:
            raise AlignConfigError(
                f"rm.loss = {self.rm.loss!r}: known losses are {', '.join(sorted(PAIRS))}"
            )
