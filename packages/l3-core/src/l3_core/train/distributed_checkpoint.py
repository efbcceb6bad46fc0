"""Per-rank distributed checkpoints with ``torch.distributed.checkpoint`` (DCP).

``checkpoint.format = "dcp"`` writes ``<run_dir>/checkpoints/step_00000042/`` as

* ``__<rank>_0.distcp``: the shards each rank wrote itself (DCP's files);
* ``.metadata``: DCP's index of every tensor's global shape and where each chunk lies;
* ``trainer.json``: step, Adam step, data position, RNG states, model arguments and
  ``"format": "dcp"`` (the small metadata file; the schedule is a function of the step);
* ``params.json``: the model arguments, as in the plain format.

Tensors are keyed by the plain model's names (``exp_avg/<name>`` for the moments), each
stored as the chunks the tensor-parallel ranks hold (a DTensor over the TP group, cut along
the dimension Megatron cuts it), so the checkpoint does not depend on the layout it was written
under: DCP reads any chunking into any other (TP=2 -> TP=1, DP=2 -> DP=1, PP changes the
stage that asks for a layer, not its name). Ranks that hold the same chunk (data-parallel
replicas) write it once between them (DCP's deduplication spreads those writes over the
replicas), so no rank writes more than its share and nothing passes through rank 0.

What a rank holds while saving: its TP/PP slice of the fp32 weights and of each Adam moment.
The distributed optimizer's ZeRO-1 ranges are contiguous ranges of flattened buffers, not
tensor chunks, so each DP group re-assembles its TP slice before writing (as the plain format
does, but without the gather to rank 0). FSDP (TP = 1) gathers each parameter whole.

With ``checkpoint.async_save`` the shards are written by a background thread while training
goes on (:class:`DcpSaver`). All ranks write into one temporary folder ``.step_NNNNNNNN.dcp.tmp``; when every rank is done
rank 0 adds ``trainer.json`` and renames it into place, then rewrites ``latest``, so a
checkpoint is visible only when complete and a temporary left by a kill is removed at start-up
(:func:`l3_core.io.remove_stale_temporaries`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from l3_core.args import ModelArgs, args_from_dict, args_to_dict
from l3_core.checkpoint import native
from l3_core.checkpoint.integrity import CorruptCheckpointError
from l3_core.io import TMP_SUFFIX, atomic_write, fsync_directory, write_json
from l3_core.train.checkpoint_backend import CheckpointBackend, LocalState

log = logging.getLogger(__name__)
FORMAT = "dcp"
DCP_METADATA = ".metadata"


def _tp_mesh():
    from megatron.core import parallel_state as ps
    from torch.distributed.device_mesh import DeviceMesh

    device = "cuda" if torch.cuda.is_available() else "cpu"
    return DeviceMesh.from_group(ps.get_tensor_model_parallel_group(), device)


def _to_dcp(local: LocalState) -> dict[str, Any]:
    """The state dict DCP writes: TP-cut tensors as DTensors over the TP group, whole ones as
    plain tensors (identical on every rank that holds them)."""
    from torch.distributed.tensor import DTensor, Shard

    sliced = [k for k, d in local.split_dims.items() if d is not None]
    mesh = _tp_mesh() if sliced else None
    out: dict[str, Any] = {}
    for key, t in local.tensors.items():
        dim = local.split_dims[key]
        out[key] = t if dim is None else DTensor.from_local(t, mesh, [Shard(dim)], run_check=False)
    return out


class DcpSaver:
    """Writes checkpoints in this format; with ``asynchronous``, in the background.

    An asynchronous save returns once this rank's shards are staged in memory (what training
    waits for); a background thread writes them over a gloo group of its own, so its
    collectives never interleave with training's. The checkpoint is made visible (renamed,
    ``latest`` rewritten) by the next :meth:`save` or by :meth:`wait`, once every rank is done.
    Construct it on every rank at the same point (it may create a process group).
    """

    def __init__(self, asynchronous: bool = False) -> None:
        self.asynchronous = asynchronous
        self._group = dist.new_group(backend="gloo") if asynchronous else None
        self._pending: tuple[Any, Callable[[], None]] | None = None

    def save(
        self,
        run_dir: Path,
        step: int,
        backend: CheckpointBackend,
        state: dict[str, Any],
        keep_last: int,
    ) -> None:
        """Write checkpoint ``step``, each rank its own shards (collective)."""
        import torch.distributed.checkpoint as dcp

        self.wait()
        root = run_dir / "checkpoints"
        path = root / f"step_{step:08d}"
        tmp = root / f".{path.name}.{FORMAT}{TMP_SUFFIX}"  # one name every rank agrees on
        if dist.get_rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        dist.barrier()
        local = backend.local_plain()
        meta = {**state, "step": step, "adam_step": local.adam_step}

        def publish() -> None:
            if dist.get_rank() == 0:
                _publish(tmp, path, backend.args, meta)
                _prune(root, keep_last)
                log.info("distributed checkpoint %s written", path)

        if not self.asynchronous:
            dcp.save(_to_dcp(local), checkpoint_id=str(tmp))
            dist.barrier()  # every rank's shards are on disk
            publish()
            dist.barrier()
            return
        future = dcp.async_save(_to_dcp(local), checkpoint_id=str(tmp), process_group=self._group)
        self._pending = (future, publish)

    def wait(self) -> None:
        """Finish the save in flight, if any, and make its checkpoint visible (collective)."""
        if self._pending is None:
            return
        future, publish = self._pending
        self._pending = None
        future.result()
        dist.barrier()
        publish()
        dist.barrier()


def _publish(tmp: Path, path: Path, args: ModelArgs, state: dict[str, Any]) -> None:
    """Rank 0, once every shard is written: add the metadata and make the checkpoint visible."""
    native.write_params(tmp, args, "float32")
    write_json(tmp / "trainer.json", {**state, "format": FORMAT, "model_args": args_to_dict(args)})
    for name in os.listdir(tmp):  # shards are written by other processes: flush them all
        with open(tmp / name, "rb+") as f:
            os.fsync(f.fileno())
    fsync_directory(tmp)
    if path.is_dir():  # a broken checkpoint of the same step, skipped on resume
        shutil.rmtree(path)
    os.replace(tmp, path)
    fsync_directory(path.parent)
    with atomic_write(path.parent / "latest", encoding="utf-8") as f:
        f.write(path.name + "\n")


def _prune(root: Path, keep_last: int) -> None:
    done = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in done[:-keep_last]:  # keep_last >= 1 (RANGES)
        shutil.rmtree(old, ignore_errors=True)


def is_distributed(path: Path) -> bool:
    """Whether checkpoint folder ``path`` was written in this format."""
    return (path / DCP_METADATA).is_file()


def read_state(path: Path) -> tuple[ModelArgs, dict[str, Any]]:
    """(model arguments, trainer state) of a distributed checkpoint, without its tensors."""
    try:
        state = json.loads((path / "trainer.json").read_bytes().decode("utf-8"))
        saved = args_from_dict(state["model_args"], where=str(path / "trainer.json"))
        int(state["adam_step"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise CorruptCheckpointError(f"{path}: unreadable trainer.json: {e}") from None
    if state.get("format") != FORMAT:
        raise CorruptCheckpointError(f"{path}: trainer.json has no 'format': {FORMAT!r}")
    return saved, state


def restore(path: Path, backend: CheckpointBackend, adam_step: int) -> None:
    """Read this rank's slices from ``path`` into the model and optimizer (collective)."""
    import torch.distributed.checkpoint as dcp

    like = backend.local_plain()  # this layout's shapes; the values are overwritten
    target = _to_dcp(like)
    dcp.load(target, checkpoint_id=str(path))
    tensors = {k: v.to_local() if hasattr(v, "to_local") else v for k, v in target.items()}
    backend.load_local(LocalState(tensors, like.split_dims, adam_step))
