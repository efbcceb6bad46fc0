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
checkpoint intact. ``files.json`` records every file's size and sha256
(:mod:`l3_core.checkpoint.integrity`); on resume a checkpoint whose files do not match is
skipped for the newest intact one before it (:func:`read_newest_intact`). Only the newest
``keep_last`` checkpoints are kept.

Gathering to rank 0 suits the model sizes a CPU can train; at the 8B+ scale use
``checkpoint.format = "dcp"`` (:mod:`l3_core.train.distributed_checkpoint`): every rank writes
its own shards. Resume reads either format, whatever the config's format is.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch.distributed as dist

from l3_core.args import ModelArgs, args_from_dict, args_to_dict
from l3_core.checkpoint import integrity, native
from l3_core.checkpoint.integrity import CorruptCheckpointError
from l3_core.checkpoint.tensors import read_safetensors
from l3_core.errors import CheckpointError, ConfigError
from l3_core.io import atomic_path, atomic_write, write_json
from l3_core.run_config import CheckpointConfig
from l3_core.train import distributed_checkpoint
from l3_core.train.checkpoint_backend import CheckpointBackend, PlainState

log = logging.getLogger(__name__)
LATEST = "latest"
#: loads a checkpoint's tensors into this rank's model and optimizer (collective)
Restore = Callable[[CheckpointBackend], None]


def save_plain(
    run_dir: Path, step: int, backend: CheckpointBackend, state: dict[str, Any], keep_last: int
) -> Path | None:
    """Write checkpoint ``step`` atomically, gathered to rank 0 (collective)."""
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
        integrity.record_files(tmp)
    with atomic_write(root / LATEST, encoding="utf-8") as f:
        f.write(path.name + "\n")
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep_last]:  # keep_last >= 1 (RANGES)
        shutil.rmtree(old, ignore_errors=True)
    log.info("checkpoint %s written", path)
    dist.barrier()
    return path


class PlainSaver:
    """Writes checkpoints in the plain format (gathered to rank 0, synchronous)."""

    def save(
        self,
        run_dir: Path,
        step: int,
        backend: CheckpointBackend,
        state: dict[str, Any],
        keep_last: int,
    ) -> None:
        save_plain(run_dir, step, backend, state, keep_last)

    def wait(self) -> None:
        """Nothing is ever in flight."""


def saver_for(cfg: CheckpointConfig) -> PlainSaver | distributed_checkpoint.DcpSaver:
    """The saver of ``cfg.format`` (collective: every rank builds it at the same point)."""
    if cfg.format == "plain":
        if cfg.async_save:
            raise ConfigError(
                "checkpoint.async_save = true needs checkpoint.format = 'dcp', not 'plain'"
            )
        return PlainSaver()
    return distributed_checkpoint.DcpSaver(asynchronous=cfg.async_save)


def latest(run_dir: Path) -> Path | None:
    """The checkpoint that ``run_dir``'s ``latest`` pointer names (complete when written), or
    None when there is no pointer."""
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    return run_dir / "checkpoints" / pointer.read_text(encoding="utf-8").strip()


def read_newest_intact(
    run_dir: Path, args: ModelArgs
) -> tuple[Path, Restore, dict[str, Any]] | None:
    """(path, restore, trainer state) of the newest intact checkpoint of ``run_dir``, or None
    when it has none yet (``restore(backend)`` loads its tensors, in either format).

    The one ``latest`` names comes first, then the older ones, newest first; a broken one (a
    file missing, truncated or altered) is skipped with a warning naming it and why. When
    every checkpoint is broken that is an error: starting again from step 0 would silently
    lose the run.
    """
    named = latest(run_dir)
    if named is None:
        return None
    older = sorted(
        (p for p in named.parent.glob("step_*") if p.is_dir() and p.name < named.name),
        reverse=True,
    )
    broken = []
    for path in [named, *older]:
        try:
            restore, state = read(path, args)
        except CorruptCheckpointError as e:
            log.warning("checkpoint %s is broken, trying the one before: %s", path.name, e)
            broken.append(str(e))
            continue
        if broken:
            log.warning("resuming from %s, the newest intact checkpoint", path)
        return path, restore, state
    raise CheckpointError(
        f"{named.parent}: no intact checkpoint to resume from ({'; '.join(broken)}); "
        "move the folder away or set checkpoint.resume = false to start again"
    )


def read(path: Path, args: ModelArgs) -> tuple[Restore, dict[str, Any]]:
    """(restore, trainer state) of checkpoint ``path``, checked against ``args``.

    A plain checkpoint's files are checked against ``files.json`` first and its tensors read;
    a missing, truncated or altered file, or an unreadable one, raises
    :class:`CorruptCheckpointError`. A distributed one is read by every rank in ``restore``.
    """
    if not (path / "trainer.json").is_file():
        raise CorruptCheckpointError(f"{path}: missing or incomplete (no trainer.json)")
    if distributed_checkpoint.is_distributed(path):
        saved, state = distributed_checkpoint.read_state(path)
        check_same_model(saved, args, str(path))
        return partial(
            distributed_checkpoint.restore, path, adam_step=int(state["adam_step"])
        ), state
    plain, state = read_plain(path, args)
    return lambda backend: backend.load(plain), state


def read_plain(path: Path, args: ModelArgs) -> tuple[PlainState, dict[str, Any]]:
    """(tensors, trainer state) of plain checkpoint ``path``, its files verified."""
    integrity.verify_files(path)
    try:
        state = json.loads((path / "trainer.json").read_bytes().decode("utf-8"))
        saved = args_from_dict(state["model_args"], where=str(path / "trainer.json"))
        adam_step = int(state["adam_step"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CorruptCheckpointError(f"{path}: unreadable trainer.json: {e}") from None
    check_same_model(saved, args, str(path))
    weights = read_safetensors(path / "model.safetensors")
    moments = read_safetensors(path / "optimizer.safetensors")
    return PlainState(weights, moments, adam_step), state


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
