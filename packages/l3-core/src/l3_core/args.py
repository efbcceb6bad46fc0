"""Model arguments: one dataclass that both the plain PyTorch model and the Megatron-core
GPTModel are built from, the published presets, and FLOP accounting for MFU."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from l3_core.errors import ConfigError, PresetError


@dataclass(frozen=True)
class RopeScaling:
    """The Llama 3.1 RoPE frequency scaling (``rope_type: llama3`` in HF configs)."""

    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclass(frozen=True)
class ModelArgs:
    """Shape of a dense Llama 3 transformer.

    ``ffn_hidden_dim`` is derived from ``dim``, ``ffn_dim_multiplier`` and ``multiple_of``
    exactly as the reference implementation does; ``ffn_dim_override`` exists only for
    checkpoints (e.g. Hugging Face configs) that state the hidden size directly.
    """

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None
    vocab_size: int = 128256
    multiple_of: int = 256
    ffn_dim_multiplier: float | None = None
    ffn_dim_override: int | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling: RopeScaling | None = None
    max_seq_len: int = 8192
    tie_embeddings: bool = False
    head_dim_override: int | None = None

    def __post_init__(self) -> None:
        for name in ("dim", "n_layers", "n_heads", "vocab_size", "multiple_of", "max_seq_len"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"ModelArgs.{name} must be positive, got {getattr(self, name)}")
        if self.head_dim_override is None and self.dim % self.n_heads:
            raise ConfigError(
                f"ModelArgs.dim={self.dim} must be divisible by n_heads={self.n_heads}"
            )
        if self.n_heads % self.kv_heads:
            raise ConfigError(
                f"ModelArgs.n_heads={self.n_heads} must be a multiple of n_kv_heads={self.kv_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(f"head dim {self.head_dim} must be even for RoPE")

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def head_dim(self) -> int:
        return self.head_dim_override or self.dim // self.n_heads

    @property
    def ffn_hidden_dim(self) -> int:
        if self.ffn_dim_override is not None:
            return self.ffn_dim_override
        hidden = int(2 * (4 * self.dim) / 3)
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)

    def replace(self, **changes: Any) -> ModelArgs:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_preset(cls, name: str, **changes: Any) -> ModelArgs:
        """The arguments of a published model (``llama3.1-8b``...) or a tiny test preset."""
        try:
            args = PRESETS[name]
        except KeyError:
            raise PresetError(
                f"unknown model preset {name!r}; available presets: {', '.join(list_presets())}"
            ) from None
        return args.replace(**changes) if changes else args

    # -- sizes -------------------------------------------------------------------------------

    def num_params(self, include_embedding: bool = True) -> int:
        """Parameter count; the tied output head is counted once."""
        d, hd = self.dim, self.head_dim
        attn = d * self.n_heads * hd * 2 + d * self.kv_heads * hd * 2
        ffn = 3 * d * self.ffn_hidden_dim
        per_layer = attn + ffn + 2 * d
        total = self.n_layers * per_layer + d  # + final norm
        embed = self.vocab_size * d
        total += embed if self.tie_embeddings else 2 * embed
        if not include_embedding:
            total -= embed
        return total

    def flops_per_token(self, seq_len: int, training: bool = True) -> float:
        """Model FLOPs per token: 6N (2N forward) plus causal attention's QK^T and AV.

        N excludes the input embedding (a lookup, not a matmul). The attention term counts the
        full ``seq_len x seq_len`` score matrix, as the PaLM/Megatron MFU convention does;
        a causal kernel skips half of it, which MFU figures conventionally do not credit.
        """
        n = self.num_params(include_embedding=False)
        if self.tie_embeddings:
            n += self.vocab_size * self.dim  # the head is a matmul even when tied
        attn = 2 * 2 * self.n_layers * seq_len * self.n_heads * self.head_dim
        fwd = 2 * n + attn
        return 3 * fwd if training else fwd


def list_presets() -> list[str]:
    """Names accepted by :meth:`ModelArgs.from_preset`."""
    return list(PRESETS)


_LLAMA31 = RopeScaling(factor=8.0)
_LLAMA32 = RopeScaling(factor=32.0)

PRESETS: dict[str, ModelArgs] = {
    "llama3-8b": ModelArgs(
        dim=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        multiple_of=1024,
        ffn_dim_multiplier=1.3,
    ),
    "llama3-70b": ModelArgs(
        dim=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        multiple_of=4096,
        ffn_dim_multiplier=1.3,
    ),
    "llama3.1-8b": ModelArgs(
        dim=4096,
        n_layers=32,
        n_heads=32,
        n_kv_heads=8,
        multiple_of=1024,
        ffn_dim_multiplier=1.3,
        rope_scaling=_LLAMA31,
        max_seq_len=131072,
    ),
    "llama3.1-70b": ModelArgs(
        dim=8192,
        n_layers=80,
        n_heads=64,
        n_kv_heads=8,
        multiple_of=4096,
        ffn_dim_multiplier=1.3,
        rope_scaling=_LLAMA31,
        max_seq_len=131072,
    ),
    "llama3.1-405b": ModelArgs(
        dim=16384,
        n_layers=126,
        n_heads=128,
        n_kv_heads=8,
        multiple_of=4096,
        ffn_dim_multiplier=1.2,
        rope_scaling=_LLAMA31,
        max_seq_len=131072,
    ),
    "llama3.2-1b": ModelArgs(
        dim=2048,
        n_layers=16,
        n_heads=32,
        n_kv_heads=8,
        multiple_of=256,
        ffn_dim_multiplier=1.5,
        rope_scaling=_LLAMA32,
        max_seq_len=131072,
        tie_embeddings=True,
    ),
    "llama3.2-3b": ModelArgs(
        dim=3072,
        n_layers=28,
        n_heads=24,
        n_kv_heads=8,
        multiple_of=256,
        ffn_dim_multiplier=1.0,
        rope_scaling=_LLAMA32,
        max_seq_len=131072,
        tie_embeddings=True,
    ),
    # Small shapes for tests and CPU demos. Their vocabularies fit the small sentencepiece
    # tokenizer (a few thousand BPE pieces + the 256 Llama 3 special tokens).
    "llama3-tiny": ModelArgs(
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=512,
        multiple_of=32,
        max_seq_len=512,
    ),
    "llama3-20m": ModelArgs(
        dim=384,
        n_layers=8,
        n_heads=6,
        n_kv_heads=2,
        vocab_size=8192,
        multiple_of=256,
        max_seq_len=2048,
    ),
}


def args_to_dict(args: ModelArgs) -> dict[str, Any]:
    """Plain data for the native checkpoint format."""
    return dataclasses.asdict(args)


def args_from_dict(data: dict[str, Any], where: str = "params") -> ModelArgs:
    """Inverse of :func:`args_to_dict`, rejecting unknown keys."""
    from l3_core.config import from_dict

    try:
        return from_dict(ModelArgs, data, where)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
