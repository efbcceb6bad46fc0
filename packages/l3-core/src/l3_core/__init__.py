"""l3-core: the Llama 3 model, tokenizer, checkpoints and the contracts every l3 package shares.

The base install (``pip install l3-core``) has no torch: presets, FLOP counts, tokenizers, the
chat format, token shards, configs and errors. The model and checkpoints need
``l3-core[model]``; training needs ``l3-core[train]``. Those names are imported lazily so
that ``import l3_core`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from l3_core.args import ModelArgs, RopeScaling, list_presets
from l3_core.errors import (
    CheckpointError,
    ConfigError,
    InputError,
    L3Error,
    PresetError,
    ShardError,
    TokenizerError,
)
from l3_core.tokenizer import ChatFormat, Message, Tokenizer

__version__ = "0.2.0"

_LAZY = {
    "Transformer": "l3_core.model",
    "generate": "l3_core.model",
    "load_checkpoint": "l3_core.checkpoint",
    "save_checkpoint": "l3_core.checkpoint",
}

if TYPE_CHECKING:
    from l3_core.checkpoint import load_checkpoint, save_checkpoint
    from l3_core.model import Transformer, generate


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        try:
            module = importlib.import_module(_LAZY[name])
        except ImportError as e:
            raise ImportError(
                f"l3_core.{name} needs the model extra: pip install 'l3-core[model]' ({e})"
            ) from e
        return getattr(module, name)
    raise AttributeError(f"module 'l3_core' has no attribute {name!r}")


__all__ = [
    "ChatFormat",
    "CheckpointError",
    "ConfigError",
    "InputError",
    "L3Error",
    "Message",
    "ModelArgs",
    "PresetError",
    "RopeScaling",
    "ShardError",
    "Tokenizer",
    "TokenizerError",
    "Transformer",
    "generate",
    "list_presets",
    "load_checkpoint",
    "save_checkpoint",
]
