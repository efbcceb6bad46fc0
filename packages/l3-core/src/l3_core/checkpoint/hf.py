"""Hugging Face Llama checkpoints: config.json <-> ModelArgs and the tensor-name mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from l3_core.args import ModelArgs, RopeScaling
from l3_core.errors import CheckpointError
from l3_core.io import write_json

# Our name pattern -> HF name pattern; {i} is the layer index.
_NAMES = {
    "tok_embeddings.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "layers.{i}.attention_norm.weight": "model.layers.{i}.input_layernorm.weight",
    "layers.{i}.ffn_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
    "layers.{i}.attention.wq.weight": "model.layers.{i}.self_attn.q_proj.weight",
    "layers.{i}.attention.wk.weight": "model.layers.{i}.self_attn.k_proj.weight",
    "layers.{i}.attention.wv.weight": "model.layers.{i}.self_attn.v_proj.weight",
    "layers.{i}.attention.wo.weight": "model.layers.{i}.self_attn.o_proj.weight",
    "layers.{i}.feed_forward.w1.weight": "model.layers.{i}.mlp.gate_proj.weight",
    "layers.{i}.feed_forward.w3.weight": "model.layers.{i}.mlp.up_proj.weight",
    "layers.{i}.feed_forward.w2.weight": "model.layers.{i}.mlp.down_proj.weight",
}


def _compile(mapping: dict[str, str]) -> list[tuple[re.Pattern[str], str]]:
    return [
        (re.compile("^" + re.escape(src).replace(r"\{i\}", r"(?P<i>\d+)") + "$"), dst)
        for src, dst in mapping.items()
    ]


_TO_HF = _compile(_NAMES)
_FROM_HF = _compile({v: k for k, v in _NAMES.items()})


def _rename(name: str, rules: list[tuple[re.Pattern[str], str]], where: str) -> str:
    for pattern, target in rules:
        m = pattern.match(name)
        if m:
            return target.format(**m.groupdict())
    raise CheckpointError(f"{where}: unexpected tensor {name!r} for a Llama model")


def to_hf_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {_rename(k, _TO_HF, "state dict"): v for k, v in state.items()}


def from_hf_state(
    state: dict[str, torch.Tensor], args: ModelArgs, where: str
) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        if k.endswith("rotary_emb.inv_freq"):
            continue  # a buffer some exporters save; recomputed from the config
        out[_rename(k, _FROM_HF, where)] = v
    if args.tie_embeddings:
        out.pop("output.weight", None)  # tied checkpoints may carry a copy of the embedding
    return out


def args_from_hf_config(config: dict[str, Any], where: str) -> ModelArgs:
    """ModelArgs from a transformers ``LlamaConfig`` dict (``rope_scaling`` or ``rope_parameters``)."""
    try:
        return _args_from_hf_config(config, where)
    except KeyError as e:
        raise CheckpointError(f"{where}: missing key {e.args[0]!r}") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        raise CheckpointError(f"{where}: invalid value: {e}") from None


def _args_from_hf_config(config: dict[str, Any], where: str) -> ModelArgs:
    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    if model_type != "llama" or (archs and "LlamaForCausalLM" not in archs):
        raise CheckpointError(
            f"{where}: model_type={model_type!r}, architectures={archs}: expected a Llama "
            "causal LM (model_type 'llama', LlamaForCausalLM)"
        )
    for key, allowed in (("attention_bias", False), ("mlp_bias", False), ("hidden_act", "silu")):
        if key in config and config[key] != allowed:
            raise CheckpointError(
                f"{where}: {key}={config[key]!r} is not supported (Llama 3 uses {allowed!r})"
            )
    rope = dict(config.get("rope_parameters") or {})
    legacy = config.get("rope_scaling") or {}
    theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type") or legacy.get("rope_type") or legacy.get("type") or "default"
    scaling = None
    if rope_type == "llama3":
        src = rope if rope.get("rope_type") == "llama3" else legacy
        scaling = RopeScaling(
            factor=float(src["factor"]),
            low_freq_factor=float(src["low_freq_factor"]),
            high_freq_factor=float(src["high_freq_factor"]),
            original_max_position_embeddings=int(src["original_max_position_embeddings"]),
        )
    elif rope_type != "default":
        raise CheckpointError(
            f"{where}: rope type {rope_type!r} is not supported (default or llama3)"
        )
    dim, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim = config.get("head_dim")
    return ModelArgs(
        dim=dim,
        n_layers=int(config["num_hidden_layers"]),
        n_heads=heads,
        n_kv_heads=int(config.get("num_key_value_heads") or heads),
        vocab_size=int(config["vocab_size"]),
        ffn_dim_override=int(config["intermediate_size"]),
        norm_eps=float(config.get("rms_norm_eps", 1e-5)),
        rope_theta=float(theta),
        rope_scaling=scaling,
        max_seq_len=int(config.get("max_position_embeddings", 8192)),
        tie_embeddings=bool(config.get("tie_word_embeddings", False)),
        head_dim_override=int(head_dim) if head_dim and head_dim != dim // heads else None,
    )


def hf_config(args: ModelArgs, dtype: torch.dtype) -> dict[str, Any]:
    """A transformers ``LlamaConfig`` dict. RoPE settings are written in both the older
    ``rope_theta``/``rope_scaling`` layout and the ``rope_parameters`` layout of transformers 5."""
    rope_parameters: dict[str, Any] = {"rope_theta": args.rope_theta, "rope_type": "default"}
    rope_scaling = None
    if args.rope_scaling is not None:
        rs = args.rope_scaling
        rope_scaling = {
            "rope_type": "llama3",
            "factor": rs.factor,
            "low_freq_factor": rs.low_freq_factor,
            "high_freq_factor": rs.high_freq_factor,
            "original_max_position_embeddings": rs.original_max_position_embeddings,
        }
        rope_parameters = {"rope_theta": args.rope_theta, **rope_scaling}
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": args.dim,
        "intermediate_size": args.ffn_hidden_dim,
        "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "vocab_size": args.vocab_size,
        "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": rope_scaling,
        "rope_parameters": rope_parameters,
        "max_position_embeddings": args.max_seq_len,
        "tie_word_embeddings": args.tie_embeddings,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": str(dtype).removeprefix("torch."),
        "dtype": str(dtype).removeprefix("torch."),
    }
    if args.vocab_size == 128256:  # the official tokenizer's special ids
        config.update(bos_token_id=128000, eos_token_id=[128001, 128008, 128009])
    return config


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def write_hf_config(directory: Path, args: ModelArgs, dtype: torch.dtype) -> None:
    write_json(directory / "config.json", hf_config(args, dtype))
