"""Load l3 and Hugging Face checkpoints for FP8 serving, and save / load pre-quantised ones.

A pre-quantised checkpoint is an l3 checkpoint directory (``params.json`` + safetensors) whose
quantised FFN projections hold ``weight`` (float8_e4m3fn [out, in]) and ``weight_scale``
(float32 [out, 1]) and everything else in its own dtype, plus ``quantization_config.json``::

    {"format": "l3-fp8-rowwise", "version": 1, "fp8_dtype": "float8_e4m3fn",
     "weight_scale": "per-output-row", "activation_scale": "dynamic-per-token",
     "activation_scale_ub": 1200.0, "skipped_layers": [0, 31],
     "quantized_modules": [...], "skipped_modules": [...], "files": {"model.safetensors": sha256}}

It loads back bit-identical; any file changed after writing (the hashes), and any tensor whose
name, dtype or shape disagrees with the config, is a :class:`QuantizedCheckpointError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from l3_core.checkpoint import load_checkpoint
from l3_core.checkpoint import native as l3_native
from l3_core.checkpoint.tensors import load_tensors, save_tensors
from l3_core.io import atomic_path, write_json
from l3_core.model import Transformer
from l3_infer_fp8.errors import QuantizedCheckpointError
from l3_infer_fp8.quant import FFN_PROJECTIONS, FP8_DTYPE, Fp8Recipe, Fp8RowwiseLinear, apply_recipe

QUANT_CONFIG = "quantization_config.json"
FORMAT = "l3-fp8-rowwise"
VERSION = 1
TOKENIZER = "tokenizer.model"
DEFAULT_MAX_SHARD_BYTES = 5 * 2**30


def is_quantized(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a pre-quantised checkpoint (has ``quantization_config.json``)."""
    return (Path(path) / QUANT_CONFIG).is_file()


def load_model(
    path: str | os.PathLike[str],
    fp8: bool = False,
    recipe: Fp8Recipe | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = torch.bfloat16,
    backend: str = "auto",
) -> Transformer:
    """The model of an l3 / HF checkpoint (quantised at load with ``recipe`` when ``fp8``), or
    of a pre-quantised checkpoint (FP8 whatever ``fp8`` says; ``recipe`` must be None)."""
    if is_quantized(path):
        if recipe is not None:
            raise QuantizedCheckpointError(
                f"{path}: already quantised with its own recipe ({QUANT_CONFIG}); "
                "load it without a recipe"
            )
        return load_quantized(path, device, backend)
    model = load_checkpoint(path, device=device, dtype=dtype)
    if fp8:
        apply_recipe(model, recipe or Fp8Recipe(), backend)
    return model


def save_quantized(
    model: Transformer,
    path: str | os.PathLike[str],
    tokenizer: str | os.PathLike[str] | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write a quantised ``model`` (see :func:`~l3_infer_fp8.quant.quantize_model`) as a
    pre-quantised checkpoint, atomically; ``tokenizer`` is copied in as ``tokenizer.model``."""
    path = Path(path)
    quantized = {n: m for n, m in model.named_modules() if isinstance(m, Fp8RowwiseLinear)}
    if not quantized:
        raise QuantizedCheckpointError(f"{path}: the model has no FP8 modules; quantise it first")
    bounds = {m.bound for m in quantized.values()}
    if len(bounds) != 1:
        raise QuantizedCheckpointError(
            f"{path}: FP8 modules disagree on the bound: {sorted(bounds)}"
        )
    state = model.state_dict()
    ffn = [
        f"layers.{i}.feed_forward.{p}" for i in range(len(model.layers)) for p in FFN_PROJECTIONS
    ]
    skipped_layers = sorted(
        {
            i
            for i in range(len(model.layers))
            if not any(f"layers.{i}.feed_forward.{p}" in quantized for p in FFN_PROJECTIONS)
        }
    )
    with atomic_path(path) as tmp:
        tmp.mkdir()
        l3_native.write_params(
            tmp, model.args, str(model.tok_embeddings.weight.dtype).removeprefix("torch.")
        )
        save_tensors(state, tmp, max_shard_bytes)
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / TOKENIZER)
        write_json(
            tmp / QUANT_CONFIG,
            {
                "format": FORMAT,
                "version": VERSION,
                "fp8_dtype": "float8_e4m3fn",
                "weight_scale": "per-output-row",
                "activation_scale": "dynamic-per-token",
                "activation_scale_ub": bounds.pop(),
                "skipped_layers": skipped_layers,
                "quantized_modules": list(quantized),
                "skipped_modules": [n for n in ffn if n not in quantized],
                "files": {f.name: file_sha256(f) for f in sorted(tmp.glob("*.safetensors"))},
            },
        )
    return path


def load_quantized(
    path: str | os.PathLike[str], device: str | torch.device = "cpu", backend: str = "auto"
) -> Transformer:
    """Load a pre-quantised checkpoint exactly as saved, checking it against its config."""
    path = Path(path)
    config = read_quant_config(path)
    _verify_files(path, config["files"])
    args = l3_native.read_params(path)
    with torch.device("meta"):
        model = Transformer(args)
    for name in config["quantized_modules"]:
        ffn, proj = _ffn_owner(model, name, path)
        linear = getattr(ffn, proj)
        setattr(
            ffn,
            proj,
            Fp8RowwiseLinear(
                linear.in_features, linear.out_features, config["activation_scale_ub"], backend
            ),
        )
    state = load_tensors(path)
    _check_state(model, state, path, config["quantized_modules"])
    model.load_state_dict(state, assign=True, strict=True)
    return model.to(device).eval()


def read_quant_config(path: Path) -> dict[str, Any]:
    """``quantization_config.json`` of ``path``, with its keys and values checked."""
    file = path / QUANT_CONFIG
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise QuantizedCheckpointError(f"{file}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise QuantizedCheckpointError(f"{file}: expected a JSON object")
    expected = {
        "format": FORMAT,
        "version": VERSION,
        "fp8_dtype": "float8_e4m3fn",
        "weight_scale": "per-output-row",
        "activation_scale": "dynamic-per-token",
    }
    for key, value in expected.items():
        if config.get(key) != value:
            raise QuantizedCheckpointError(
                f"{file}: key {key!r} is {config.get(key)!r}, expected {value!r}"
            )
    bound = config.get("activation_scale_ub")
    if (
        not isinstance(bound, (int, float))
        or isinstance(bound, bool)
        or not 0 < bound < float("inf")
    ):
        raise QuantizedCheckpointError(
            f"{file}: key 'activation_scale_ub' is {bound!r}, expected a positive number"
        )
    for key, item in (
        ("quantized_modules", str),
        ("skipped_modules", str),
        ("skipped_layers", int),
    ):
        value = config.get(key)
        if not isinstance(value, list) or not all(type(v) is item for v in value):
            raise QuantizedCheckpointError(
                f"{file}: key {key!r} is {value!r}, expected a list of {item.__name__}"
            )
    if not isinstance(config.get("files"), dict) or not config["files"]:
        raise QuantizedCheckpointError(f"{file}: key 'files' is missing or empty")
    return config


def _verify_files(path: Path, files: dict[str, str]) -> None:
    on_disk = {f.name for f in path.glob("*.safetensors")}
    if on_disk != set(files):
        raise QuantizedCheckpointError(
            f"{path}: safetensors files {sorted(on_disk)} differ from those in {QUANT_CONFIG} "
            f"{sorted(files)}"
        )
    for name, digest in files.items():
        actual = file_sha256(path / name)
        if actual != digest:
            raise QuantizedCheckpointError(
                f"{path / name}: sha256 {actual[:12]}... differs from {digest[:12]}... in "
                f"{QUANT_CONFIG}: the file changed after it was written"
            )


def _ffn_owner(model: Transformer, name: str, path: Path) -> tuple[torch.nn.Module, str]:
    parts = name.split(".")
    valid = (
        len(parts) == 4
        and parts[0] == "layers"
        and parts[1].isdigit()
        and int(parts[1]) < len(model.layers)
        and parts[2] == "feed_forward"
        and parts[3] in FFN_PROJECTIONS
    )
    if not valid:
        raise QuantizedCheckpointError(
            f"{path / QUANT_CONFIG}: quantized module {name!r} is not an FFN projection "
            f"(layers.<i>.feed_forward.w1|w3|w2) of a {len(model.layers)}-layer model"
        )
    return model.layers[int(parts[1])].feed_forward, parts[3]


def _check_state(
    model: Transformer, state: dict[str, torch.Tensor], path: Path, quantized: list[str]
) -> None:
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}  # meta
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise QuantizedCheckpointError(
            f"{path}: tensors do not match {QUANT_CONFIG}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    fp8_names = {f"{m}.weight" for m in quantized}
    for name, (shape, _) in expected.items():
        t = state[name]
        want = (
            FP8_DTYPE
            if name in fp8_names
            else torch.float32
            if name.endswith(".weight_scale")
            else None
        )
        if (
            tuple(t.shape) != shape
            or (want is not None and t.dtype != want)
            or (want is None and t.dtype == FP8_DTYPE)
        ):
            raise QuantizedCheckpointError(
                f"{path}: tensor {name!r} is {t.dtype} {tuple(t.shape)}, expected "
                f"{want or 'a non-fp8 dtype'} {shape}"
            )
        if name.endswith(".weight_scale") and not bool((torch.isfinite(t) & (t > 0)).all()):
            raise QuantizedCheckpointError(
                f"{path}: tensor {name!r} has non-finite or non-positive scales"
            )


def file_sha256(file: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(file, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
