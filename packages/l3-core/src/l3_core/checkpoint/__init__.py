"""Load and save checkpoints: Hugging Face Llama format and the project's own ("l3") format.

Both are safetensors; nothing is ever unpickled. Saving writes into a temporary directory that
replaces the target only when complete, with the size and sha256 of every file in
``files.json`` (:mod:`l3_core.checkpoint.integrity`), which loading checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import torch

from l3_core.checkpoint import hf, integrity, native
from l3_core.checkpoint.tensors import check_state, load_tensors, save_tensors
from l3_core.errors import CheckpointError
from l3_core.io import atomic_path
from l3_core.model.transformer import Transformer

DEFAULT_MAX_SHARD_BYTES = 5 * 2**30


def detect_format(path: str | os.PathLike[str]) -> Literal["hf", "l3"]:
    """ "hf" for a directory with config.json, "l3" for one with params.json."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    if (path / native.PARAMS).is_file():
        return "l3"
    if (path / "config.json").is_file():
        return "hf"
    raise CheckpointError(f"{path}: neither params.json (l3 format) nor config.json (HF format)")


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    checksums: bool = True,
) -> Transformer:
    """Load an HF or l3 checkpoint into a :class:`Transformer` in eval mode (args at ``.args``).

    ``dtype`` defaults to the checkpoint's own. Any missing, unexpected or mis-shaped tensor is
    an error naming the tensor (and both shapes). When the directory has ``files.json`` (l3
    wrote it), every file's size and (with ``checksums``, one read of each file) sha256 is
    checked first: a truncated or altered file raises
    :class:`~l3_core.checkpoint.integrity.CorruptCheckpointError` naming it.
    """
    return load_checkpoint_with_head(path, None, device, dtype, checksums)[0]


def load_checkpoint_with_head(
    path: str | os.PathLike[str],
    head_prefix: str | None = "output_head.",
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    checksums: bool = True,
) -> tuple[Transformer, dict[str, torch.Tensor]]:
    """:func:`load_checkpoint`, and the tensors named ``head_prefix...`` (a head trained beside
    the model, e.g. a reward model's score, which l3-core's trainer saves as ``output_head.*``)
    returned apart, names without the prefix; ``None``: no head (any extra tensor refused)."""
    path = Path(path)
    fmt = detect_format(path)
    integrity.verify_files(path, checksums=checksums)
    if fmt == "hf":
        args = hf.args_from_hf_config(hf.read_hf_config(path), where=str(path / "config.json"))
        state = hf.from_hf_state(load_tensors(path), args, where=str(path))
    else:
        args = native.read_params(path)
        state = load_tensors(path)
    head = {}
    if head_prefix:
        for name in [k for k in state if k.startswith(head_prefix)]:
            head[name.removeprefix(head_prefix)] = state.pop(name)
    with torch.device("meta"):
        model = Transformer(args)
    check_state(model, state, path)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    model.load_state_dict(state, assign=True, strict=True)
    if dtype is not None:
        head = {k: v.to(dtype) for k, v in head.items()}
    return model.to(device).eval(), {k: v.to(device) for k, v in head.items()}


def save_checkpoint(
    model: Transformer,
    path: str | os.PathLike[str],
    format: Literal["hf", "l3"] = "l3",
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Save ``model`` atomically as an HF Llama checkpoint or in the l3 format."""
    if format not in ("hf", "l3"):
        raise CheckpointError(f"unknown checkpoint format {format!r}: use 'hf' or 'l3'")
    path = Path(path)
    state = model.state_dict()
    dtype = next(iter(state.values())).dtype
    with atomic_path(path) as tmp:
        tmp.mkdir()
        if format == "hf":
            hf.write_hf_config(tmp, model.args, dtype)
            save_tensors(hf.to_hf_state(state), tmp, max_shard_bytes)
        else:
            native.write_params(tmp, model.args, str(dtype).removeprefix("torch."))
            save_tensors(state, tmp, max_shard_bytes)
        integrity.record_files(tmp)
    return path


__all__ = ["detect_format", "load_checkpoint", "load_checkpoint_with_head", "save_checkpoint"]
