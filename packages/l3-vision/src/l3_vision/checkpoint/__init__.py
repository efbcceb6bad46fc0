"""Load and save vision-language checkpoints: Hugging Face Mllama or l3-vision's own format.

Both are safetensors (never pickle). The l3 format is ``vision.json`` (the
:class:`~l3_vision.args.VisionArgs`) beside the state dict; the HF format is what
``MllamaForConditionalGeneration.save_pretrained`` writes. Saving is atomic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

import torch

from l3_core.checkpoint import integrity
from l3_core.checkpoint.tensors import check_state, load_tensors, save_tensors
from l3_core.io import atomic_path, write_json
from l3_vision.args import vision_args_from_dict, vision_args_to_dict
from l3_vision.checkpoint.mllama_state import (
    args_from_mllama_config,
    from_mllama_state,
    mllama_config,
    to_mllama_state,
)
from l3_vision.errors import VisionCheckpointError, VisionConfigError
from l3_vision.model import VisionLanguageModel

PARAMS = "vision.json"
MAX_SHARD_BYTES = 5 * 2**30


def detect_format(path: Path) -> Literal["hf", "l3"]:
    if not path.is_dir():
        raise VisionCheckpointError(f"{path}: checkpoint directory not found")
    if (path / PARAMS).is_file():
        return "l3"
    if (path / "config.json").is_file():
        return "hf"
    raise VisionCheckpointError(
        f"{path}: neither {PARAMS} (l3 format) nor config.json (HF Mllama format)"
    )


def _read_json(path: Path) -> dict:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VisionCheckpointError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise VisionCheckpointError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def load_checkpoint(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    checksums: bool = True,
) -> VisionLanguageModel:
    """An HF ``MllamaForConditionalGeneration`` or l3-vision checkpoint as a
    :class:`VisionLanguageModel` in eval mode, language model frozen. Any missing, unexpected
    or mis-shaped tensor is an error naming it; so is a file that differs from its record in
    ``files.json`` (its size, and its sha256 unless ``checksums`` is False)."""
    path = Path(path)
    fmt = detect_format(path)
    integrity.verify_files(
        path, checksums=checksums
    )  # when files.json is there (not in an HF download)
    tensors = load_tensors(path)
    if fmt == "hf":
        embed = next((v for k, v in tensors.items() if k.endswith("embed_tokens.weight")), None)
        if embed is None:
            raise VisionCheckpointError(f"{path}: no embed_tokens.weight tensor")
        config = _read_json(path / "config.json")
        vocab = int((config.get("text_config") or {}).get("vocab_size", 0))
        args = args_from_mllama_config(config, embed.shape[0] - vocab, str(path / "config.json"))
        state = from_mllama_state(tensors, args, str(path))
    else:
        try:
            args = vision_args_from_dict(_read_json(path / PARAMS), str(path / PARAMS))
        except VisionConfigError as e:  # a bad header is a bad model file (exit 5), not config
            raise VisionCheckpointError(str(e)) from None
        state = tensors
    with torch.device("meta"):
        model = VisionLanguageModel(args)
    check_state(model, state, path, VisionCheckpointError)
    if dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    model.load_state_dict(state, assign=True, strict=True)
    model.freeze_language()
    return model.to(device).eval()


def save_checkpoint(
    model: VisionLanguageModel,
    path: str | os.PathLike[str],
    format: Literal["hf", "l3"] = "l3",
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Write ``model`` atomically as an HF Mllama checkpoint or in the l3 format, with
    l3-core's ``files.json`` (sizes and sha256 of every file) that the loader checks."""
    if format not in ("hf", "l3"):
        raise VisionCheckpointError(f"unknown checkpoint format {format!r}: use 'hf' or 'l3'")
    if format == "hf" and model.args.video is not None:
        raise VisionCheckpointError(
            f"{path}: Mllama has no video path (aggregator, video cross-attention); "
            "save this model with format='l3'"
        )
    path = Path(path)
    state = model.state_dict()
    dtype = next(iter(state.values())).dtype
    with atomic_path(path) as tmp:
        tmp.mkdir()
        if format == "hf":
            write_json(tmp / "config.json", mllama_config(model.args, dtype))
            save_tensors(to_mllama_state(state, model.args), tmp, max_shard_bytes)
        else:
            write_json(tmp / PARAMS, vision_args_to_dict(model.args))
            save_tensors(state, tmp, max_shard_bytes)
        integrity.record_files(tmp)
    return path
