"""Shapes of the image encoder and of the vision-language model, and their presets (data)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from l3_core.args import ModelArgs
from l3_vision.errors import VisionConfigError


@dataclass(frozen=True)
class EncoderArgs:
    """The image encoder: a ViT of ``n_local_layers`` then ``n_global_layers`` gated layers.

    Features are the final (global) output concatenated with the outputs of the local layers
    listed in ``intermediate_layers`` (0-based), so ``output_dim = dim * (1 + len(...))``.
    """

    dim: int = 1280
    n_local_layers: int = 32
    n_global_layers: int = 8
    n_heads: int = 16
    mlp_dim: int = 5120
    patch_size: int = 14
    tile_size: int = 560
    max_tiles: int = 4
    intermediate_layers: tuple[int, ...] = (3, 7, 15, 23, 30)
    norm_eps: float = 1e-5
    channels: int = 3

    def __post_init__(self) -> None:
        for name in (
            "dim",
            "n_local_layers",
            "n_heads",
            "mlp_dim",
            "patch_size",
            "tile_size",
            "max_tiles",
        ):
            if getattr(self, name) <= 0:
                raise VisionConfigError(
                    f"encoder.{name} must be positive, got {getattr(self, name)}"
                )
        if self.n_global_layers < 0:
            raise VisionConfigError(
                f"encoder.n_global_layers must be >= 0, got {self.n_global_layers}"
            )
        if self.dim % self.n_heads:
            raise VisionConfigError(
                f"encoder.dim={self.dim} must be divisible by encoder.n_heads={self.n_heads}"
            )
        if self.tile_size % self.patch_size:
            raise VisionConfigError(
                f"encoder.tile_size={self.tile_size} must be a multiple of encoder.patch_size={self.patch_size}"
            )
        bad = [i for i in self.intermediate_layers if not 0 <= i < self.n_local_layers]
        if bad:
            raise VisionConfigError(
                f"encoder.intermediate_layers {bad} outside [0, {self.n_local_layers}) local layers"
            )

    @property
    def n_patches(self) -> int:
        """Tokens per tile: the patches and the class token."""
        return (self.tile_size // self.patch_size) ** 2 + 1

    @property
    def output_dim(self) -> int:
        return self.dim * (1 + len(self.intermediate_layers))

    def replace(self, **changes: Any) -> EncoderArgs:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VideoArgs:
    """The video path (Llama 3 paper, section 7.2): up to ``max_frames`` frames through the
    image encoder, a perceiver-resampler aggregator of ``aggregator_layers`` layers merging
    each ``frames_per_group`` consecutive frames into one, and video cross-attention layers
    before the self-attention layers listed in ``cross_attention_layers``."""

    cross_attention_layers: tuple[int, ...] = ()
    max_frames: int = 64
    frames_per_group: int = 32
    aggregator_layers: int = 2

    def __post_init__(self) -> None:
        for name in ("max_frames", "frames_per_group", "aggregator_layers"):
            if getattr(self, name) <= 0:
                raise VisionConfigError(f"video.{name} must be positive, got {getattr(self, name)}")


def every_nth_layer(n_layers: int, n: int = 4) -> tuple[int, ...]:
    """Self-attention layers before which an adapter runs: one after every ``n`` layers,
    counted from the top as llama-models' fusion schedule does (32 layers -> 3, 7, ..., 31)."""
    return tuple(sorted(range(n_layers - 1, -1, -n)))[-(n_layers // n) :] if n_layers >= n else ()


def video_layers(image_layers: tuple[int, ...], n: int = 4) -> tuple[int, ...]:
    """The image cross-attention layers before every ``n``-th of which a video cross-attention
    layer runs (the paper's "before every fourth image cross-attention layer"): 3, 7, ..., 31
    -> 15, 31."""
    return tuple(sorted(image_layers)[n - 1 :: n])


@dataclass(frozen=True)
class VisionArgs:
    """The vision-language model: an encoder, a frozen text model, adapters between them.

    ``cross_attention_layers`` are indices of the text model's self-attention layers before
    which a gated cross-attention layer runs (Mllama's listed indices count both kinds).
    ``n_extra_tokens`` new embeddings follow the text vocabulary; the first is ``<|image|>``.
    """

    encoder: EncoderArgs = field(default_factory=EncoderArgs)
    text: ModelArgs = field(default_factory=lambda: ModelArgs.from_preset("llama3.1-8b"))
    cross_attention_layers: tuple[int, ...] = (3, 7, 11, 15, 19, 23, 27, 31)
    n_extra_tokens: int = 8
    # None: no video path (a Llama 3.2 Vision checkpoint has none).
    video: VideoArgs | None = None

    def __post_init__(self) -> None:
        layers = {"cross_attention_layers": self.cross_attention_layers}
        if self.video is not None:
            layers["video.cross_attention_layers"] = self.video.cross_attention_layers
        for name, indices in layers.items():
            bad = [i for i in indices if not 0 <= i < self.text.n_layers]
            if bad or len(set(indices)) != len(indices):
                raise VisionConfigError(
                    f"{name} {list(indices)}: each must be a distinct "
                    f"self-attention layer index in [0, {self.text.n_layers})"
                )
        if self.n_extra_tokens < 1:
            raise VisionConfigError(
                f"n_extra_tokens must be >= 1 (for <|image|>), got {self.n_extra_tokens}"
            )

    @property
    def image_token_id(self) -> int:
        return self.text.vocab_size

    @property
    def video_token_id(self) -> int:
        """``<|video|>``, the second new token."""
        return self.text.vocab_size + 1

    def replace(self, **changes: Any) -> VisionArgs:
        return dataclasses.replace(self, **changes)


ENCODER_PRESETS: dict[str, EncoderArgs] = {
    # The paper's ViT-H/14 with 8 gated global layers; 336 px tiles for image pre-training.
    "vit-h14-336": EncoderArgs(tile_size=336),
    # Llama 3.2 Vision checkpoints: the same encoder on 560 px tiles.
    "vit-h14-560": EncoderArgs(tile_size=560),
    # A few thousand parameters for tests and CPU runs.
    "vit-tiny": EncoderArgs(
        dim=32,
        n_local_layers=4,
        n_global_layers=2,
        n_heads=4,
        mlp_dim=64,
        patch_size=8,
        tile_size=32,
        intermediate_layers=(1, 3),
    ),
}


def encoder_preset(name: str, **changes: Any) -> EncoderArgs:
    try:
        args = ENCODER_PRESETS[name]
    except KeyError:
        raise VisionConfigError(
            f"unknown encoder preset {name!r}; available: {', '.join(ENCODER_PRESETS)}"
        ) from None
    return args.replace(**changes) if changes else args


def vision_args_to_dict(args: VisionArgs) -> dict[str, Any]:
    return dataclasses.asdict(args)


def vision_args_from_dict(data: dict[str, Any], where: str) -> VisionArgs:
    """Inverse of :func:`vision_args_to_dict`; unknown keys are errors naming ``where``."""
    from l3_core.args import args_from_dict
    from l3_core.config import from_dict

    try:
        encoder = from_dict(EncoderArgs, data.get("encoder", {}), f"{where}: encoder")
        text = args_from_dict(dict(data.get("text", {})), f"{where}: text")
        rest = {k: v for k, v in data.items() if k not in ("encoder", "text", "video")}
        unknown = sorted(set(rest) - {"cross_attention_layers", "n_extra_tokens"})
        if unknown:
            raise VisionConfigError(f"{where}: unknown keys {unknown}")
        video = None
        if data.get("video") is not None:
            video = from_dict(VideoArgs, data["video"], f"{where}: video")
        return VisionArgs(
            encoder=encoder,
            text=text,
            cross_attention_layers=tuple(rest.get("cross_attention_layers", ())),
            n_extra_tokens=int(rest.get("n_extra_tokens", 8)),
            video=video,
        )
    except (TypeError, ValueError) as e:
        raise VisionConfigError(f"{where}: {e}") from None
