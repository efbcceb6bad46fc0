"""l3-core: the Llama 3 model, tokenizer, checkpoints and the contracts every l3 package shares.

The base install (``pip install l3-core``) has no torch: presets, FLOP counts, tokenizers, the
chat format, token shards, the run config and the metrics schema, configs, errors and exit
codes. The model and checkpoints need ``l3-core[model]``; training needs ``l3-core[train]``.
Those names are imported lazily so that ``import l3_core`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3_core.args import ModelArgs, RopeScaling, list_presets
from l3_core.errors import (
    CheckpointError,
    ConfigError,
    DependencyError,
    InputError,
    L3Error,
    ModelFileError,
    OutputError,
    PeerFailureError,
    PresetError,
    ShardError,
    TokenizerError,
)
from l3_core.exit_codes import ExitCode
from l3_core.lazy import lazy_attributes
from l3_core.metrics_schema import MetricsRecord, read_metrics
from l3_core.run_config import ParallelSizes, RunConfig, load_run_config, write_run_config
from l3_core.tokenizer import ChatFormat, Message, Tokenizer
from l3_core.versions import package_version

__version__ = package_version("l3-core")

_LAZY = {
    "Transformer": "l3_core.model",
    "generate": "l3_core.model",
    "load_checkpoint": "l3_core.checkpoint",
    "save_checkpoint": "l3_core.checkpoint",
}

if TYPE_CHECKING:
    from l3_core.checkpoint import load_checkpoint, save_checkpoint
    from l3_core.model import Transformer, generate


__getattr__ = lazy_attributes("l3_core", _LAZY, extra="l3-core[model]")


__all__ = [
    "ChatFormat",
    "CheckpointError",
    "ConfigError",
    "DependencyError",
    "ExitCode",
    "InputError",
    "L3Error",
    "Message",
    "MetricsRecord",
    "ModelArgs",
    "ModelFileError",
    "OutputError",
    "ParallelSizes",
    "PeerFailureError",
    "PresetError",
    "RopeScaling",
    "RunConfig",
    "ShardError",
    "Tokenizer",
    "TokenizerError",
    "Transformer",
    "__version__",
    "generate",
    "list_presets",
    "load_checkpoint",
    "load_run_config",
    "read_metrics",
    "save_checkpoint",
    "write_run_config",
]
