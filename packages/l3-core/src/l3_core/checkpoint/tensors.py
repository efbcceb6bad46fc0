"""Safetensors files, single or sharded with an index. Never pickle.

Callers write into a temporary directory that replaces the target when complete."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from l3_core.checkpoint.integrity import CorruptCheckpointError
from l3_core.errors import CheckpointError
from l3_core.io import write_json

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"


def save_tensors(
    state: dict[str, torch.Tensor],
    directory: Path,
    max_shard_bytes: int,
    metadata: dict[str, str] | None = None,
) -> None:
    """Write ``state`` as one file or, above ``max_shard_bytes``, shards plus an index."""
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in state.items():
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    meta = {"format": "pt", **(metadata or {})}
    if len(shards) == 1:
        save_file(shards[0], str(directory / SINGLE), metadata=meta)
        return
    weight_map: dict[str, str] = {}
    total = sum(t.numel() * t.element_size() for t in state.values())
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(directory / fname), metadata=meta)
        weight_map.update(dict.fromkeys(shard, fname))
    write_json(directory / INDEX, {"metadata": {"total_size": total}, "weight_map": weight_map})


def load_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a single-file or index-sharded safetensors checkpoint."""
    index = directory / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_bytes().decode("utf-8"))["weight_map"]
            files = sorted(set(weight_map.values()))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise CorruptCheckpointError(f"{index}: invalid safetensors index: {e}") from None
        if not all(isinstance(f, str) and "/" not in f for f in files):
            raise CorruptCheckpointError(f"{index}: weight_map must name files in {directory}")
    elif (directory / SINGLE).is_file():
        files = [SINGLE]
    else:
        if any(directory.glob("*.bin")) or any(directory.glob("*.pt*")):
            raise CheckpointError(
                f"{directory}: only pickle weights (*.bin/*.pt) found; l3 never unpickles. "
                "Convert them to safetensors first."
            )
        raise CheckpointError(f"{directory}: no {SINGLE} or {INDEX}")
    state: dict[str, torch.Tensor] = {}
    for fname in files:
        path = directory / fname
        if not path.is_file():
            raise CorruptCheckpointError(f"{path}: shard listed in the index is missing")
        state.update(read_safetensors(path))
    return state


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of one safetensors file; a truncated or corrupt file is a
    :class:`CorruptCheckpointError` naming it."""
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CorruptCheckpointError(f"{path}: unreadable safetensors file: {e}") from None


def check_state(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    path: str | os.PathLike[str],
    error: type[CheckpointError] = CheckpointError,
) -> None:
    """Refuse ``state`` unless it holds exactly ``model``'s tensors with its shapes; ``error``
    (a :class:`CheckpointError`) names the file, the tensors and the shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise error(
            f"{path}: checkpoint does not match its config: missing tensors {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected tensors {unexpected[:5]}"
        )
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise error(
                f"{path}: tensor {name!r} has shape {tuple(state[name].shape)} but the config "
                f"implies {shape}"
            )
