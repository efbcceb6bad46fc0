"""Training checkpoints: weights and Adam moments in the plain layout, plus the loop's state.

A checkpoint is a directory ``<run_dir>/checkpoints/step_00000042/`` holding

* ``model.safetensors``: fp32 master weights under the plain model's names (so it is also a
  starting point for ``l3_core.load_checkpoint`` via ``params.json``);
* ``optimizer.safetensors``: ``exp_avg/<name>`` and ``exp_avg_sq/<name>`` in the same layout;
* ``trainer.json``: step, Adam step, data-stream position, RNG states, model arguments, the
  parallel sizes it was written under and the data's tokenizer fingerprint.

Because every tensor is stored unsharded under plain names, a checkpoint written under one
(TP, CP, PP, DP) split resumes under any other: each rank cuts its own shard on load
(:mod:`l3_core.checkpoint.megatron`; where the shards live, Megatron's distributed optimizer
or FSDP, is the job of :mod:`l3_core.train.checkpoint_backend`). The directory is written to a temporary name and renamed
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

import torch.distributed as dist

from l3_core.args import ModelArgs, args_from_dict, args_to_dict
from l3_core.checkpoint import native
from l3_core.errors import CheckpointError
from l3_core.io import atomic_path, atomic_write, write_json
from l3_core.train.checkpoint_backend import CheckpointBackend, PlainState

log = logging.getLogger(__name__)
LATEST = "latest"


def save(
    run_dir: Path, step: int, backend: CheckpointBackend, state: dict[str, Any], keep_last: int
) -> Path | None:
    """Write checkpoint ``step`` atomically (collective: every rank calls it)."""
    from safetensors.torch import save_file

    plain = backend.gather()
    if plain is None:
        dist.barrier()
        return None
    args = backend.args
    root = run_dir / "checkpoints"
    path = root / f"step_{step:08d}"
    with atomic_path(path) as tmp:
        tmp.mkdir()
        save_file(
            {k: v.contiguous() for k, v in plain.weights.items()}, str(tmp / "model.safetensors")
        )
        save_file(
            {k: v.contiguous() for k, v in (plain.moments or {}).items()},
            str(tmp / "optimizer.safetensors"),
        )
        native.write_params(tmp, args, "float32")
        write_json(
            tmp / "trainer.json",
            {**state, "step": step, "adam_step": plain.adam_step, "model_args": args_to_dict(args)},
        )
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


def read(path: Path, args: ModelArgs) -> tuple[PlainState, dict[str, Any]]:
    """(tensors, trainer state) of checkpoint ``path``, checked against ``args``."""
    from safetensors.torch import load_file

    try:
        state = json.loads((path / "trainer.json").read_text(encoding="utf-8"))
        saved = args_from_dict(state["model_args"], where=str(path / "trainer.json"))
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable trainer.json: {e}") from None
    check_same_model(saved, args, str(path))
    weights = load_file(str(path / "model.safetensors"))
    moments = load_file(str(path / "optimizer.safetensors"))
    return PlainState(weights, moments, int(state["adam_step"])), state


def _signature(args: ModelArgs) -> dict[str, Any]:
    """What makes two argument sets the same model (HF configs state the FFN width directly)."""
    return {
        "dim": args.dim,
        "n_layers": args.n_layers,
        "n_heads": args.n_heads,
        "n_kv_heads": args.kv_heads,
        "head_dim": args.head_dim,
        "vocab_size": args.vocab_size,
        "ffn_hidden_dim": args.ffn_hidden_dim,
        "norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta,
        "rope_scaling": args.rope_scaling,
        "tie_embeddings": args.tie_embeddings,
    }


def check_same_model(saved: ModelArgs, args: ModelArgs, where: str) -> None:
    mine, theirs = _signature(args), _signature(saved)
    diffs = [
        f"{k}: checkpoint {v!r}, config {mine[k]!r}" for k, v in theirs.items() if mine[k] != v
    ]
    if diffs:
        raise CheckpointError(f"{where} was written for another model: " + "; ".join(diffs))
