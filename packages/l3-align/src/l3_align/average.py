"""Weight averaging of checkpoints of one architecture (the paper averages the models of each
post-training stage's runs, 4.1.5/4.1.6).

Each checkpoint is loaded in turn and added into a float64 sum, so memory holds one model and
the sum; the mean is written in the first checkpoint's dtype, in the l3 format, with the first
one's tokenizer.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from l3_align.errors import AlignArchitectureError, AlignConfigError
from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.model import Transformer

TOKENIZER_FILE = "tokenizer.model"


def check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    """Normalised weights (equal ones when ``weights`` is None)."""
    if weights is None:
        return [1.0 / n] * n
    finite = all(math.isfinite(w) for w in weights)  # NaN passes both comparisons below
    if len(weights) != n or not finite or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise AlignConfigError(
            f"--weights {list(weights)}: need {n} finite non-negative weights with a positive sum"
        )
    total = float(sum(weights))
    return [w / total for w in weights]


def average_checkpoints(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    weights: Sequence[float] | None = None,
) -> Path:
    """Write the (weighted) mean of the checkpoints at ``paths`` to ``out``."""
    if len(paths) < 2:
        raise AlignConfigError(f"averaging needs at least 2 checkpoints, got {len(paths)}")
    ws = check_weights(weights, len(paths))
    first = load_checkpoint(paths[0])
    dtype = first.tok_embeddings.weight.dtype
    total = {k: v.to(torch.float64) * ws[0] for k, v in first.state_dict().items()}
    for path, w in zip(paths[1:], ws[1:]):
        model = load_checkpoint(path)
        _check_same_architecture(first, paths[0], model, path)
        for k, v in model.state_dict().items():
            total[k] += v.to(torch.float64) * w
        del model
    first.load_state_dict({k: v.to(dtype) for k, v in total.items()})
    out = save_checkpoint(first, out, format="l3")
    tok = Path(paths[0]) / TOKENIZER_FILE
    if tok.is_file():
        shutil.copyfile(tok, out / TOKENIZER_FILE)
    return out


# What the weights' shapes and meaning depend on (max_seq_len is a serving limit; the FFN
# width is compared as computed, however the config spells it).
ARCHITECTURE_KEYS = (
    "dim", "n_layers", "n_heads", "kv_heads", "head_dim", "ffn_hidden_dim", "vocab_size",
    "tie_embeddings", "norm_eps", "rope_theta", "rope_scaling",
)  # fmt: skip


def _architecture(model: Transformer) -> dict[str, object]:
    return {k: getattr(model.args, k) for k in ARCHITECTURE_KEYS}


def _check_same_architecture(
    a: Transformer, a_path: str | os.PathLike[str], b: Transformer, b_path: str | os.PathLike[str]
) -> None:
    da, db = _architecture(a), _architecture(b)
    diff = [k for k in da if da[k] != db[k]]
    if diff:
        k = diff[0]
        raise AlignArchitectureError(
            f"{b_path}: architecture differs from {a_path}: {k} = {db[k]!r}, expected {da[k]!r}"
        )
