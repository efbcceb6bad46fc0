"""Training checkpoints: weights and Adam moments in the plain layout, plus the loop's state.

A checkpoint is a directory ``<run_dir>/checkpoints/step_00000042/`` holding

* ``model.safetensors``: fp32 master weights under the plain model's names (so it is also a
  starting point for ``l3_core.load_checkpoint`` via ``params.json``);
* ``optimizer.safetensors``: ``exp_avg/<name>`` and ``exp_avg_sq/<name>`` in the same layout;
* ``trainer.json``: step, Adam step, data-stream position, RNG states, model arguments, the
  parallel sizes it was written under and the data's tokenizer fingerprint.

Because every tensor is stored unsharded under plain names, a checkpoint written under one
(TP, CP, PP, DP) split resumes under any other: each rank cuts its own shard on load
(:mod:`l3_core.checkpoint.megatron`). The directory is written to a temporary name and renamed
into place, then ``latest`` is rewritten atomically; a kill at any moment leaves the previous
checkpoint intact. Only the newest ``keep_last`` checkpoints are kept.

Gathering to rank 0 suits the model sizes a CPU can train; at the 8B+ scale the same layout
would be written by each rank for its own tensors.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from l3_core.args import ModelArgs, args_from_dict, args_to_dict
from l3_core.checkpoint import native
from l3_core.checkpoint.megatron import chunk_mappings, to_full, to_local
from l3_core.errors import CheckpointError
from l3_core.io import atomic_path, atomic_write, write_json

log = logging.getLogger(__name__)
LATEST = "latest"
_MOMENTS = ("exp_avg", "exp_avg_sq")


def _optimizers(optimizer) -> list:
    return list(getattr(optimizer, "chained_optimizers", [optimizer]))


def param_slots(optimizer):
    """(model param, fp32 main shard, range in the flattened param, inner optimizer) per param."""
    for opt in _optimizers(optimizer):
        pairs = list(zip(opt.model_float16_groups, opt.shard_fp32_from_float16_groups)) + list(
            zip(opt.model_fp32_groups, opt.shard_fp32_groups))
        for model_group, shard_group in pairs:
            for p, shard in zip(model_group, shard_group):
                yield p, shard, opt._get_model_param_range_map(p)["param"], opt.optimizer


def _full_local(optimizer, key: str, dp_group) -> dict[int, torch.Tensor]:
    """id(model param) -> the whole (TP-local) tensor of ``key``, assembled across DP ranks."""
    slots = list(param_slots(optimizer))
    flat = torch.zeros(sum(p.numel() for p, *_ in slots), dtype=torch.float32)
    views, at = {}, 0
    for p, shard, rng, inner in slots:
        view = flat[at:at + p.numel()]
        if key == "param":
            value = shard
        else:
            state = inner.state.get(shard, {})
            value = state.get(key, torch.zeros_like(shard))
        view[rng.start:rng.end] = value.detach().float().view(-1)
        views[id(p)] = view.view(p.shape)
        at += p.numel()
    if dist.get_world_size(dp_group) > 1:
        dist.all_reduce(flat, group=dp_group)  # each element is owned by exactly one DP rank
    return views


def gather_plain(chunks, optimizer, args: ModelArgs) -> tuple[dict, dict, int] | None:
    """Unsharded fp32 weights and moments under plain names, on global rank 0 (else None)."""
    from megatron.core import parallel_state as ps

    dp_group = ps.get_data_parallel_group(with_context_parallel=True)
    tp_group = ps.get_tensor_model_parallel_group()
    tp = ps.get_tensor_model_parallel_world_size()
    local = {k: _full_local(optimizer, k, dp_group) for k in ("param", *_MOMENTS)}
    adam_step = 0
    for _, shard, _, inner in param_slots(optimizer):
        if "step" in inner.state.get(shard, {}):
            adam_step = int(inner.state[shard]["step"])
            break
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in local}
    for chunk in chunks:
        for mapping, p in chunk_mappings(chunk, args):
            for key, views in local.items():
                t = views[id(p)]
                if tp > 1 and mapping.kind != "norm":
                    parts = [torch.empty_like(t) for _ in range(tp)]
                    dist.all_gather(parts, t.contiguous(), group=tp_group)
                else:
                    parts = [t]
                for name, full in zip(mapping.plain_names, to_full(mapping.kind, parts, args)):
                    out[key][name] = full.clone()
    keep = ps.get_data_parallel_rank(with_context_parallel=True) == 0 and \
        ps.get_tensor_model_parallel_rank() == 0
    gathered = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(out if keep else None, gathered, dst=0)
    if dist.get_rank() != 0:
        return None
    merged: dict[str, dict[str, torch.Tensor]] = {k: {} for k in local}
    for part in gathered:
        if part is not None:
            for k in part:
                merged[k].update(part[k])
    moments = {f"{k}/{n}": t for k in _MOMENTS for n, t in merged[k].items()}
    return merged["param"], moments, adam_step


def load_plain(chunks, optimizer, args: ModelArgs, weights: dict[str, torch.Tensor],
               moments: dict[str, torch.Tensor] | None, adam_step: int) -> None:
    """Set this rank's weights (model and fp32 main copies) and Adam state from plain tensors."""
    from megatron.core import parallel_state as ps

    tp_rank = ps.get_tensor_model_parallel_rank()
    tp = ps.get_tensor_model_parallel_world_size()
    slots = {id(p): (shard, rng, inner) for p, shard, rng, inner in param_slots(optimizer)}
    with torch.no_grad():
        for chunk in chunks:
            for mapping, p in chunk_mappings(chunk, args):
                def local(src: dict[str, torch.Tensor], prefix: str = "", m=mapping, p=p):
                    try:
                        full = [src[prefix + n] for n in m.plain_names]
                    except KeyError as e:
                        raise CheckpointError(f"checkpoint lacks tensor {e.args[0]!r}") from None
                    t = to_local(m.kind, full, args, tp_rank, tp)
                    if tuple(t.shape) != tuple(p.shape):
                        raise CheckpointError(
                            f"checkpoint tensors {m.plain_names} give shape {tuple(t.shape)} for "
                            f"{m.megatron_name}, the model has {tuple(p.shape)}")
                    return t.float()
                w = local(weights)
                p.copy_(w.to(p.dtype))
                if id(p) not in slots:
                    continue
                shard, rng, inner = slots[id(p)]
                shard.copy_(w.view(-1)[rng.start:rng.end])
                if moments is not None:
                    inner.state[shard] = {
                        "step": torch.tensor(float(adam_step)),
                        **{k: local(moments, f"{k}/").view(-1)[rng.start:rng.end].clone()
                           for k in _MOMENTS},
                    }


def save(run_dir: Path, step: int, chunks, optimizer, args: ModelArgs, state: dict[str, Any],
         keep_last: int) -> Path | None:
    """Write checkpoint ``step`` atomically (collective: every rank calls it)."""
    from safetensors.torch import save_file

    plain = gather_plain(chunks, optimizer, args)
    if plain is None:
        dist.barrier()
        return None
    weights, moments, adam_step = plain
    root = run_dir / "checkpoints"
    path = root / f"step_{step:08d}"
    with atomic_path(path) as tmp:
        tmp.mkdir()
        save_file({k: v.contiguous() for k, v in weights.items()}, str(tmp / "model.safetensors"))
        save_file({k: v.contiguous() for k, v in moments.items()},
                  str(tmp / "optimizer.safetensors"))
        native.write_params(tmp, args, "float32")
        write_json(tmp / "trainer.json", {**state, "step": step, "adam_step": adam_step,
                                           "model_args": args_to_dict(args)})
    with atomic_write(root / LATEST, encoding="utf-8") as f:
        f.write(path.name + "\n")
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    log.info("checkpoint %s written", path)
    dist.barrier()
    return path


def latest(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None."""
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text(encoding="utf-8").strip()
    if not (path / "trainer.json").is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


def read(path: Path, args: ModelArgs) -> tuple[dict, dict, dict]:
    """(weights, moments, trainer state) of checkpoint ``path``, checked against ``args``."""
    from safetensors.torch import load_file

    try:
        state = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        saved = args_from_dict(state["model_args"], where=str(path / "trainer.json"))
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable trainer.json: {e}") from None
    check_same_model(saved, args, str(path))
    weights = load_file(str(path / "model.safetensors"))
    moments = load_file(str(path / "optimizer.safetensors"))
    return weights, moments, state


def check_same_model(saved: ModelArgs, args: ModelArgs, where: str) -> None:
    diffs = [f"{k}: checkpoint {v!r}, config {getattr(args, k)!r}"
             for k, v in args_to_dict(saved).items() if args_to_dict(args)[k] != v]
    if diffs:
        raise CheckpointError(f"{where} was written for another model: " + "; ".join(diffs))
