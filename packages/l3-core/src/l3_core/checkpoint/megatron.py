"""The plain (and so Hugging Face) parameter layout <-> Megatron-core's, for any (TP, PP) split.

The plain model names its tensors ``layers.{i}.attention.wq.weight`` and so on; a Megatron-core
``GPTModel`` chunk holds, per pipeline stage, ``decoder.layers.{j}...`` with local layer
indices and tensor-parallel shards: the fused QKV projection interleaves per KV group
``[q heads of the group | k | v]`` and is split by groups, the gated FC1 holds
``[gate shard | up shard]`` on each rank, vocabulary and column projections split along rows
and row-parallel projections along columns. Norms are replicated, and so is a training
objective's head (``output_head.*``, see :meth:`l3_core.train.objective.Objective.head`),
which keeps its own name.

The same functions convert anything shaped like a parameter (weights and Adam moments), so a
checkpoint stored in the plain layout resumes under any split.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from l3_core.args import ModelArgs
from l3_core.errors import CheckpointError

_LAYER = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")
HEAD_PREFIX = "output_head."
#: kinds held whole by every tensor-parallel rank
REPLICATED = frozenset({"norm", "head"})
_LAYER_MAP = {
    "input_layernorm.weight": ("norm", ["attention_norm.weight"]),
    "self_attention.linear_qkv.weight": (
        "qkv",
        ["attention.wq.weight", "attention.wk.weight", "attention.wv.weight"],
    ),
    "self_attention.linear_proj.weight": ("row", ["attention.wo.weight"]),
    "pre_mlp_layernorm.weight": ("norm", ["ffn_norm.weight"]),
    "mlp.linear_fc1.weight": ("fc1", ["feed_forward.w1.weight", "feed_forward.w3.weight"]),
    "mlp.linear_fc2.weight": ("row", ["feed_forward.w2.weight"]),
}


@dataclass(frozen=True)
class ParamMapping:
    """How one Megatron parameter is made of plain tensors."""

    megatron_name: str
    kind: str  # "vocab" | "row" | "norm" | "qkv" | "fc1" | "head"
    plain_names: tuple[str, ...]


def mapping_for(megatron_name: str, global_layer: int | None, args: ModelArgs) -> ParamMapping:
    """The plain tensors behind ``megatron_name`` (``global_layer`` for ``decoder.layers.*``)."""
    name = megatron_name.removeprefix("module.").removeprefix("module.")
    if name == "embedding.word_embeddings.weight":
        return ParamMapping(name, "vocab", ("tok_embeddings.weight",))
    if name == "output_layer.weight":
        plain = "tok_embeddings.weight" if args.tie_embeddings else "output.weight"
        return ParamMapping(name, "vocab", (plain,))
    if name == "decoder.final_layernorm.weight":
        return ParamMapping(name, "norm", ("norm.weight",))
    if name.startswith(HEAD_PREFIX):
        return ParamMapping(name, "head", (name,))
    m = _LAYER.match(name)
    if m and m.group(2) in _LAYER_MAP:
        if global_layer is None:
            raise CheckpointError(f"{megatron_name}: the global layer index is needed")
        kind, names = _LAYER_MAP[m.group(2)]
        return ParamMapping(name, kind, tuple(f"layers.{global_layer}.{n}" for n in names))
    raise CheckpointError(f"Megatron parameter {megatron_name!r} has no plain counterpart")


def to_local(
    kind: str, full: list[torch.Tensor], args: ModelArgs, tp_rank: int, tp_size: int
) -> torch.Tensor:
    """This TP rank's shard of a Megatron parameter, from the full plain tensors."""
    if kind in REPLICATED:
        return full[0]
    if kind == "vocab":
        return full[0].chunk(tp_size, 0)[tp_rank]
    if kind == "row":
        return full[0].chunk(tp_size, 1)[tp_rank]
    if kind == "fc1":
        w1, w3 = full
        return torch.cat([w1.chunk(tp_size, 0)[tp_rank], w3.chunk(tp_size, 0)[tp_rank]])
    if kind == "qkv":
        wq, wk, wv = full
        ng, hd, h = args.kv_heads, args.head_dim, wq.shape[1]
        per = args.n_heads // ng
        fused = torch.cat(
            [wq.reshape(ng, per * hd, h), wk.reshape(ng, hd, h), wv.reshape(ng, hd, h)], dim=1
        )
        return fused.chunk(tp_size, 0)[tp_rank].reshape(-1, h)
    raise CheckpointError(f"unknown parameter kind {kind!r}")


def to_full(kind: str, shards: list[torch.Tensor], args: ModelArgs) -> list[torch.Tensor]:
    """The full plain tensors of a Megatron parameter from its shards in TP-rank order."""
    if kind in REPLICATED:
        return [shards[0]]
    if kind == "vocab":
        return [torch.cat(shards, 0)]
    if kind == "row":
        return [torch.cat(shards, 1)]
    if kind == "fc1":
        halves = [s.chunk(2, 0) for s in shards]
        return [torch.cat([g for g, _ in halves]), torch.cat([u for _, u in halves])]
    if kind == "qkv":
        ng, hd = args.kv_heads, args.head_dim
        per = args.n_heads // ng
        h = shards[0].shape[1]
        fused = torch.cat([s.reshape(-1, (per + 2) * hd, h) for s in shards], 0)
        q, k, v = fused.split([per * hd, hd, hd], dim=1)
        return [q.reshape(-1, h), k.reshape(-1, h), v.reshape(-1, h)]
    raise CheckpointError(f"unknown parameter kind {kind!r}")


def chunk_mappings(
    chunk: torch.nn.Module,
    args: ModelArgs,
    heads: bool = True,
) -> Iterator[tuple[ParamMapping, torch.nn.Parameter]]:
    """Every parameter of a Megatron GPTModel chunk with its plain mapping (``heads=False``:
    the language model's only, without an objective's head)."""
    model: Any = chunk  # a GPTModel under its wrappers; megatron-core has no type hints
    while hasattr(model, "module"):  # DDP / Float16Module wrappers
        model = model.module
    for name, param in model.named_parameters():
        if not heads and name.startswith(HEAD_PREFIX):
            continue
        m = _LAYER.match(name)
        layer = None
        if m:
            layer = model.decoder.layers[int(m.group(1))].layer_number - 1
        yield mapping_for(name, layer, args), param


def load_plain_into_chunks(
    chunks: list[torch.nn.Module],
    get: Callable[[str], torch.Tensor],
    args: ModelArgs,
    tp_rank: int,
    tp_size: int,
) -> None:
    """Copy plain tensors (``get(name)`` returns one, full) into this rank's Megatron chunks
    (an objective's head keeps its own initial values)."""
    with torch.no_grad():
        for chunk in chunks:
            for mapping, param in chunk_mappings(chunk, args, heads=False):
                full = [get(n) for n in mapping.plain_names]
                local = to_local(mapping.kind, full, args, tp_rank, tp_size)
                if tuple(local.shape) != tuple(param.shape):
                    raise CheckpointError(
                        f"{mapping.megatron_name}: plain tensors {mapping.plain_names} give a shard "
                        f"of shape {tuple(local.shape)}, the model expects {tuple(param.shape)}"
                    )
                param.copy_(local)
