"""Hugging Face ``MllamaForConditionalGeneration`` <-> l3-vision: the config and the one
state-dict adapter between the two layouts.

Where the layouts differ: Mllama interleaves cross-attention layers with self-attention layers
in one list (its indices count both kinds), while here adapters are keyed by the index of the
self-attention layer they run before; Mllama's ViT layers keep q/k/v separate and name their
gates ``gate_attn``/``gate_ffn``, while timm's blocks fuse ``qkv`` and the gates sit where timm
puts layer scales (``ls1``/``ls2``); the class token and patch positions carry timm's leading
singleton axes; the ``vocab + 8`` token table is split into the frozen text table and the new
one. Text self-attention layers map through l3-core's own HF Llama names.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from l3_core.checkpoint import hf as core_hf
from l3_vision.args import EncoderArgs, VisionArgs
from l3_vision.errors import VisionCheckpointError
from l3_vision.preprocess.tiling import supported_aspect_ratios

# Prefixes of the two layouts transformers reads (as saved, and as held in memory).
_PREFIXES = [
    ("language_model.model.", "text."),
    ("model.language_model.", "text."),
    ("language_model.lm_head.", "lm_head."),
    ("lm_head.", "lm_head."),
    ("vision_model.", "vision."),
    ("model.vision_model.", "vision."),
    ("multi_modal_projector.", "projector."),
    ("model.multi_modal_projector.", "projector."),
]
_SAVE_PREFIX = {
    "text.": "language_model.model.",
    "lm_head.": "language_model.lm_head.",
    "vision.": "vision_model.",
    "projector.": "multi_modal_projector.",
}

# Encoder names: Mllama's -> ours (outside the per-layer ones).
_ENCODER = {
    "patch_embedding.weight": "trunk.patch_embed.proj.weight",
    "gated_positional_embedding.gate": "position_embedding.gate",
    "gated_positional_embedding.tile_embedding.weight": "position_embedding.tile_embedding.weight",
    "pre_tile_positional_embedding.embedding.weight": "pre_tile_embedding.embedding.weight",
    "pre_tile_positional_embedding.gate": "pre_tile_embedding.gate",
    "post_tile_positional_embedding.embedding.weight": "post_tile_embedding.embedding.weight",
    "post_tile_positional_embedding.gate": "post_tile_embedding.gate",
    "layernorm_pre.weight": "trunk.norm_pre.weight",
    "layernorm_pre.bias": "trunk.norm_pre.bias",
    "layernorm_post.weight": "trunk.norm.weight",
    "layernorm_post.bias": "trunk.norm.bias",
}
# Leading singleton axes timm gives these parameters.
_RESHAPED = {
    "class_embedding": "trunk.cls_token",
    "gated_positional_embedding.embedding": "trunk.pos_embed",
}
_VIT_LAYER = {
    "input_layernorm.weight": "norm1.weight",
    "input_layernorm.bias": "norm1.bias",
    "post_attention_layernorm.weight": "norm2.weight",
    "post_attention_layernorm.bias": "norm2.bias",
    "self_attn.o_proj.weight": "attn.proj.weight",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
    "gate_attn": "ls1.gate",
    "gate_ffn": "ls2.gate",
}
_QKV = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight")
_VIT_STACKS = {"transformer": "trunk.blocks", "global_transformer": "global_blocks"}
_CROSS_LAYER = {
    "cross_attn.q_proj.weight": "attention.wq.weight",
    "cross_attn.k_proj.weight": "attention.wk.weight",
    "cross_attn.v_proj.weight": "attention.wv.weight",
    "cross_attn.o_proj.weight": "attention.wo.weight",
    "cross_attn.q_norm.weight": "attention.q_norm.weight",
    "cross_attn.k_norm.weight": "attention.k_norm.weight",
    "cross_attn_attn_gate": "attn_gate",
    "cross_attn_mlp_gate": "mlp_gate",
    "input_layernorm.weight": "attention_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "feed_forward.w1.weight",
    "mlp.up_proj.weight": "feed_forward.w3.weight",
    "mlp.down_proj.weight": "feed_forward.w2.weight",
}
_LAYER = re.compile(r"^layers\.(\d+)\.(.+)$")


def hf_cross_indices(cross_attention_layers: tuple[int, ...]) -> list[int]:
    """Mllama's indices (over both kinds of layer) of adapters placed before self layers."""
    return [s + k for k, s in enumerate(sorted(cross_attention_layers))]


def self_indices(hf_cross: list[int]) -> tuple[int, ...]:
    return tuple(c - k for k, c in enumerate(sorted(hf_cross)))


# -- config ------------------------------------------------------------------------------------


def args_from_mllama_config(config: dict[str, Any], n_extra_tokens: int, where: str) -> VisionArgs:
    if config.get("model_type") != "mllama":
        raise VisionCheckpointError(
            f"{where}: model_type={config.get('model_type')!r}, expected 'mllama'"
        )
    vc, tc = dict(config.get("vision_config") or {}), dict(config.get("text_config") or {})
    try:
        encoder = EncoderArgs(
            dim=int(vc["hidden_size"]),
            n_local_layers=int(vc["num_hidden_layers"]),
            n_global_layers=int(vc["num_global_layers"]),
            n_heads=int(vc["attention_heads"]),
            mlp_dim=int(vc["intermediate_size"]),
            patch_size=int(vc["patch_size"]),
            tile_size=int(vc["image_size"]),
            max_tiles=int(vc["max_num_tiles"]),
            intermediate_layers=tuple(int(i) for i in vc["intermediate_layers_indices"]),
            norm_eps=float(vc.get("norm_eps", 1e-5)),
            channels=int(vc.get("num_channels", 3)),
        )
        cross = [int(i) for i in tc["cross_attention_layers"]]
        llama = {
            **tc,
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "num_hidden_layers": int(tc["num_hidden_layers"]) - len(cross),
        }
    except KeyError as e:
        raise VisionCheckpointError(f"{where}: missing config key {e}") from None
    ratios = [
        tuple(r)
        for r in vc.get("supported_aspect_ratios") or supported_aspect_ratios(encoder.max_tiles)
    ]
    if tuple(ratios) != supported_aspect_ratios(encoder.max_tiles):
        raise VisionCheckpointError(
            f"{where}: supported_aspect_ratios {ratios} are not those of "
            f"max_num_tiles={encoder.max_tiles}"
        )
    for key, expected in (("vision_output_dim", encoder.output_dim), ("hidden_act", "gelu")):
        if key in vc and vc[key] != expected:
            raise VisionCheckpointError(
                f"{where}: vision_config.{key}={vc[key]!r}, expected {expected!r}"
            )
    text = core_hf.args_from_hf_config(llama, where=f"{where}: text_config")
    image_token = config.get("image_token_index", config.get("image_token_id", text.vocab_size))
    if image_token != text.vocab_size:
        raise VisionCheckpointError(
            f"{where}: image_token_index={image_token}; l3-vision puts <|image|> "
            f"first after the text vocabulary ({text.vocab_size})"
        )
    return VisionArgs(
        encoder=encoder,
        text=text,
        cross_attention_layers=self_indices(cross),
        n_extra_tokens=n_extra_tokens,
    )


def mllama_config(args: VisionArgs, dtype: torch.dtype) -> dict[str, Any]:
    e, t = args.encoder, args.text
    text = core_hf.hf_config(t, dtype)
    for key in ("architectures", "torch_dtype", "dtype", "rope_scaling", "rope_theta"):
        text.pop(key, None)
    text.update(
        model_type="mllama_text_model",
        num_hidden_layers=t.n_layers + len(args.cross_attention_layers),
        cross_attention_layers=hf_cross_indices(args.cross_attention_layers),
        # The official tokenizer's <|finetune_right_pad_id|>; others name no pad token.
        pad_token_id=128004 if t.vocab_size == 128256 else None,
    )
    vision = {
        "model_type": "mllama_vision_model",
        "hidden_size": e.dim,
        "num_hidden_layers": e.n_local_layers,
        "num_global_layers": e.n_global_layers,
        "attention_heads": e.n_heads,
        "intermediate_size": e.mlp_dim,
        "patch_size": e.patch_size,
        "image_size": e.tile_size,
        "max_num_tiles": e.max_tiles,
        "intermediate_layers_indices": list(e.intermediate_layers),
        "norm_eps": e.norm_eps,
        "num_channels": e.channels,
        "vision_output_dim": e.output_dim,
        "hidden_act": "gelu",
        "supported_aspect_ratios": [list(r) for r in supported_aspect_ratios(e.max_tiles)],
    }
    name = str(dtype).removeprefix("torch.")
    return {
        "architectures": ["MllamaForConditionalGeneration"],
        "model_type": "mllama",
        "image_token_index": args.image_token_id,
        "text_config": text,
        "vision_config": vision,
        "dtype": name,
        "torch_dtype": name,
    }


# -- tensors -----------------------------------------------------------------------------------


def _split_prefix(name: str, where: str) -> tuple[str, str]:
    for prefix, part in _PREFIXES:
        if name.startswith(prefix):
            return part, name[len(prefix) :]
    raise VisionCheckpointError(f"{where}: unexpected tensor {name!r} for an Mllama model")


def from_mllama_state(
    state: dict[str, torch.Tensor], args: VisionArgs, where: str
) -> dict[str, torch.Tensor]:
    """Mllama tensors -> this package's state dict (``VisionLanguageModel.state_dict()`` names)."""
    cross_at = dict(
        zip(hf_cross_indices(args.cross_attention_layers), sorted(args.cross_attention_layers))
    )
    out: dict[str, torch.Tensor] = {}
    llama: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    for full, tensor in state.items():
        part, name = _split_prefix(full, where)
        if part == "projector.":
            out[f"projector.{name}"] = tensor
        elif part == "lm_head.":
            llama[f"lm_head.{name}"] = tensor
        elif part == "text.":
            _text_tensor(name, tensor, args, cross_at, out, llama)
        else:
            _vision_tensor(name, tensor, out, qkv, where)
    for prefix, parts in qkv.items():
        missing = [p for p in _QKV if p not in parts]
        if missing:
            raise VisionCheckpointError(f"{where}: {prefix} lacks {missing}")
        out[f"{prefix}.attn.qkv.weight"] = torch.cat([parts[p] for p in _QKV])
    for name, value in core_hf.from_hf_state(llama, args.text, where).items():
        out[f"language.{name}"] = value
    return out


def _text_tensor(
    name: str,
    tensor: torch.Tensor,
    args: VisionArgs,
    cross_at: dict[int, int],
    out: dict[str, torch.Tensor],
    llama: dict[str, torch.Tensor],
) -> None:
    vocab = args.text.vocab_size
    if name == "embed_tokens.weight":
        llama["model.embed_tokens.weight"] = tensor[:vocab]
        out["extra_embeddings.weight"] = tensor[vocab:]
        return
    m = _LAYER.match(name)
    if m is None:
        llama[f"model.{name}"] = tensor
        return
    index, rest = int(m.group(1)), m.group(2)
    if index in cross_at:
        if rest not in _CROSS_LAYER:
            raise VisionCheckpointError(
                f"unexpected tensor {name!r} in cross-attention layer {index}"
            )
        out[f"cross_layers.{cross_at[index]}.{_CROSS_LAYER[rest]}"] = tensor
    else:
        before = sum(c < index for c in cross_at)
        llama[f"model.layers.{index - before}.{rest}"] = tensor


def _vision_tensor(
    name: str,
    tensor: torch.Tensor,
    out: dict[str, torch.Tensor],
    qkv: dict[str, dict[str, torch.Tensor]],
    where: str,
) -> None:
    if name in _ENCODER:
        out[f"encoder.{_ENCODER[name]}"] = tensor
        return
    if name in _RESHAPED:
        out[f"encoder.{_RESHAPED[name]}"] = tensor.reshape(1, -1, tensor.shape[-1])
        return
    m = re.match(r"^(transformer|global_transformer)\.layers\.(\d+)\.(.+)$", name)
    if m is None:
        raise VisionCheckpointError(f"{where}: unexpected vision tensor {name!r}")
    prefix = f"encoder.{_VIT_STACKS[m.group(1)]}.{m.group(2)}"
    rest = m.group(3)
    if rest in _QKV:
        qkv.setdefault(prefix, {})[rest] = tensor
    elif rest in _VIT_LAYER:
        out[f"{prefix}.{_VIT_LAYER[rest]}"] = tensor
    else:
        raise VisionCheckpointError(f"{where}: unexpected vision tensor {name!r}")


def to_mllama_state(state: dict[str, torch.Tensor], args: VisionArgs) -> dict[str, torch.Tensor]:
    """This package's state dict -> Mllama tensors, in the layout ``save_pretrained`` writes."""
    hf_at = dict(
        zip(sorted(args.cross_attention_layers), hf_cross_indices(args.cross_attention_layers))
    )
    cross_names = {v: k for k, v in _CROSS_LAYER.items()}
    vit_names = {v: k for k, v in _VIT_LAYER.items()}
    encoder_names = {v: k for k, v in _ENCODER.items()}
    reshaped = {v: k for k, v in _RESHAPED.items()}
    stacks = {v: k for k, v in _VIT_STACKS.items()}
    language = {
        k.removeprefix("language."): v for k, v in state.items() if k.startswith("language.")
    }
    out: dict[str, torch.Tensor] = {}
    for name, tensor in core_hf.to_hf_state(language).items():
        m = re.match(r"^model\.layers\.(\d+)\.(.+)$", name)
        if m is not None:
            s = int(m.group(1))
            out[
                f"text.layers.{s + sum(c <= s for c in args.cross_attention_layers)}.{m.group(2)}"
            ] = tensor
        elif name == "model.embed_tokens.weight":
            out["text.embed_tokens.weight"] = torch.cat([tensor, state["extra_embeddings.weight"]])
        else:
            out[name.replace("model.", "text.", 1) if name.startswith("model.") else name] = tensor
    for name, tensor in state.items():
        if name.startswith("projector."):
            out[name] = tensor
        elif name.startswith("cross_layers."):
            _, s, rest = name.split(".", 2)
            out[f"text.layers.{hf_at[int(s)]}.{cross_names[rest]}"] = tensor
        elif name.startswith("encoder."):
            _encoder_to_mllama(
                name.removeprefix("encoder."),
                tensor,
                out,
                encoder_names,
                reshaped,
                stacks,
                vit_names,
            )
    return {_SAVE_PREFIX[k.split(".", 1)[0] + "."] + k.split(".", 1)[1]: v for k, v in out.items()}


def _encoder_to_mllama(
    name: str,
    tensor: torch.Tensor,
    out: dict[str, torch.Tensor],
    encoder_names: dict[str, str],
    reshaped: dict[str, str],
    stacks: dict[str, str],
    vit_names: dict[str, str],
) -> None:
    if name in encoder_names:
        out[f"vision.{encoder_names[name]}"] = tensor
    elif name in reshaped:
        target = reshaped[name]
        out[f"vision.{target}"] = tensor.reshape(-1) if target == "class_embedding" else tensor[0]
    else:
        m = re.match(r"^(trunk\.blocks|global_blocks)\.(\d+)\.(.+)$", name)
        if m is None:
            raise VisionCheckpointError(f"state dict: unexpected encoder tensor {name!r}")
        prefix = f"vision.{stacks[m.group(1)]}.layers.{m.group(2)}"
        if m.group(3) == "attn.qkv.weight":
            for part, chunk in zip(_QKV, tensor.chunk(3, dim=0)):
                out[f"{prefix}.{part}"] = chunk
        else:
            out[f"{prefix}.{vit_names[m.group(3)]}"] = tensor
