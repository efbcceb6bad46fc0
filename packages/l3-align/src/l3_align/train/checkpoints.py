"""Training checkpoints of the single-process runner: the model in the l3 format (so
``l3_core.load_checkpoint`` reads it), AdamW's moments in safetensors, and the step and data
position in JSON. Each is written to a temporary directory and renamed; ``latest`` names the
newest complete one, so a run killed at any moment resumes from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from l3_align.errors import AlignModelError
from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.io import atomic_path, remove_stale_temporaries, write_json

LATEST = "latest"


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def save_training_state(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    keep_last: int,
) -> Path:
    root = checkpoint_dir(run_dir)
    target = root / f"step_{step:08d}"
    with atomic_path(target) as tmp:
        tmp.mkdir(parents=True)
        save_checkpoint(model, tmp / "model", "l3")
        save_file(_optimizer_tensors(optimizer), str(tmp / "optimizer.safetensors"))
        write_json(tmp / "trainer.json", {"step": step, **state})
    write_json(root / LATEST, {"step": step, "dir": target.name})
    for old in sorted(root.glob("step_*"))[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_training_state(
    run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any] | None:
    """Load the newest checkpoint into ``model`` and ``optimizer``; its trainer state, or None."""
    root = checkpoint_dir(run_dir)
    if root.is_dir():
        remove_stale_temporaries(root)
    latest = root / LATEST
    if not latest.is_file():
        return None
    where = root / json.loads(latest.read_text())["dir"]
    if not where.is_dir():
        raise AlignModelError(f"{latest}: names {where.name}, which is missing")
    loaded = load_checkpoint(where / "model")
    model.load_state_dict(loaded.state_dict())
    _load_optimizer(optimizer, load_file(str(where / "optimizer.safetensors")))
    return json.loads((where / "trainer.json").read_text())


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    out = {}
    for index, entry in optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            t = value if torch.is_tensor(value) else torch.tensor(value)
            out[f"{index}.{key}"] = t.detach().contiguous().cpu()
    return out


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, t in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = t
    current = optimizer.state_dict()
    optimizer.load_state_dict({"state": state, "param_groups": current["param_groups"]})
