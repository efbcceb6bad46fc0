"""The TOML configuration of an adapter pre-training run (``l3-vision train``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from l3_core.run_config import AT_LEAST_1, NON_NEGATIVE, POSITIVE, Range, check_ranges
from l3_vision.errors import VisionConfigError


@dataclass
class ModelConfig:
    encoder_preset: str = "vit-tiny"
    max_tiles: int = 1
    # Tile side in pixels; 0: the preset's (32 for vit-tiny, 336 / 560 for ViT-H/14).
    tile_size: int = 0
    text_preset: str = "llama3-tiny"
    # An l3-core checkpoint to freeze under the adapters; empty: a new random text model.
    text_checkpoint: str = ""
    # One adapter after every ``cross_every`` self-attention layers.
    cross_every: int = 1
    # Without text_checkpoint: steps of text-only pre-training of the new text model on the
    # training captions before it is frozen (the paper's adapters sit on a pre-trained LM).
    text_pretrain_steps: int = 0


@dataclass
class DataConfig:
    train: str = ""
    eval: str = ""
    # A tokenizer file; empty: a small BPE trained on the training captions.
    tokenizer: str = ""
    tokenizer_vocab: int = 320


@dataclass
class OptimConfig:
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    # The adapters' tanh gates start at zero and must open before the image path can learn:
    # they take ``gate_lr_scale`` times the learning rate and no weight decay.
    gate_lr_scale: float = 10.0
    warmup_steps: int = 20
    train_encoder: bool = True
    eval_every: int = 100
    checkpoint_every: int = 100
    seed: int = 0


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        if not self.data.train:
            raise VisionConfigError(
                "data.train is required (a .jsonl or .parquet of image-text pairs)"
            )
        check_ranges(self, RANGES, VisionConfigError)


#: Every numeric field -> the values it may hold (finite, and in range).
RANGES: dict[str, Range] = {
    "model.max_tiles": AT_LEAST_1,
    "model.tile_size": NON_NEGATIVE,
    "model.cross_every": AT_LEAST_1,
    "model.text_pretrain_steps": NON_NEGATIVE,
    "data.tokenizer_vocab": AT_LEAST_1,
    "train.steps": AT_LEAST_1,
    "train.batch_size": AT_LEAST_1,
    "train.lr": POSITIVE,
    "train.weight_decay": NON_NEGATIVE,
    "train.gate_lr_scale": POSITIVE,
    "train.warmup_steps": NON_NEGATIVE,
    "train.eval_every": AT_LEAST_1,
    "train.checkpoint_every": AT_LEAST_1,
    "train.seed": Range(0, 2**32 - 1),
}
