"""``l3-align dpo``: the paper's DPO on preference rows, reference log-probs cached first.

The task for :func:`l3_align.train.job.run_job`: the pairs are encoded on every rank; once the
process group is up, rank 0 computes (or reuses) the reference log-probs of the training and
held-out pairs with the plain model and caches them beside the data, the others wait and read
the cache; the policy then trains on the parallel trainer.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch.distributed as dist

from l3_align.config import AlignConfig
from l3_align.data.dataset import Encoded, encode_preference_file
from l3_align.data.packing import pack, place_groups
from l3_align.dpo.objective import DPOObjective, pair_items
from l3_align.dpo.reference import (
    data_fingerprint,
    default_cache_path,
    load_reference_logps,
    model_fingerprint,
    reference_logps,
)
from l3_align.train.batches import PackedEpochs
from l3_align.train.export import export_language_model
from l3_align.train.job import AlignJob, Task, register_task, run_task
from l3_align.train.packed import PackedSource
from l3_align.train.plain import TokenLosses
from l3_align.train.setup import RunInputs, load_model, require_rows
from l3_core.checkpoint import load_checkpoint
from l3_core.jsonl import Exclusions

log = logging.getLogger(__name__)


def run_dpo(
    cfg: AlignConfig,
    model_dir: Path,
    data: Path,
    run_dir: Path,
    eval_data: Path | None = None,
    tokenizer_file: Path | None = None,
    nproc: int = 1,
) -> dict[str, Any]:
    """Train the model in ``model_dir`` with DPO on ``data``; the summary of the run."""
    return run_task("dpo", cfg, model_dir, data, run_dir, eval_data, tokenizer_file, nproc)


@register_task("dpo")
def dpo_task(cfg: AlignConfig, inputs: RunInputs, job: AlignJob) -> Task:
    d = cfg.dpo
    exclusions = Exclusions()
    files = {"train": Path(job.data), **({"eval": Path(job.eval_data)} if job.eval_data else {})}
    encoded = {
        k: encode_preference_file(p, inputs.encoder, exclusions, d.use_edited)
        for k, p in files.items()
    }
    for k, p in files.items():
        require_rows(len(encoded[k]), p, exclusions, Path(job.run_dir))

    def items(k: str, refs: np.ndarray | None = None) -> list:
        refs = refs if refs is not None else np.zeros((len(encoded[k]), 2))
        return [
            pair_items(e.value, d.mask_special_tokens, tuple(r)) for e, r in zip(encoded[k], refs)
        ]

    def data(run_cfg) -> PackedSource:
        refs = _reference(cfg, inputs, files, encoded)
        train = PackedEpochs(
            items("train", refs["train"]),
            inputs.seq_len,
            inputs.tokenizer.pad_id,
            cfg.train.seed,
            where=str(files["train"]),
        )
        held = "eval" if "eval" in files else "train"
        validation = pack(items(held, refs[held]), inputs.seq_len, inputs.tokenizer.pad_id)
        if held == "train":  # no held-out file: the first global batch of the training rows
            validation = validation.take(slice(0, cfg.train.batch_rows))
        return PackedSource(train, validation, inputs.tokenizer.fingerprint(), str(files["train"]))

    held = "eval" if "eval" in files else "train"
    eval_rows = len(place_groups([_length(g) for g in items(held)], inputs.seq_len))
    return Task(
        DPOObjective(d, data),
        {f"{k}_pairs": len(v) for k, v in encoded.items()},
        exclusions,
        eval_rows if held == "eval" else cfg.train.batch_rows,
        export_language_model(inputs.tokenizer_file),
        lambda final: TokenLosses(load_checkpoint(final)),
        has_eval=held == "eval",
    )


def _length(group) -> int:
    return sum(len(item.tokens) for item in group)


def _reference(
    cfg: AlignConfig, inputs: RunInputs, files: dict[str, Path], encoded: dict[str, list[Encoded]]
) -> dict[str, np.ndarray]:
    """Reference log-probs of every file's pairs: rank 0 computes or reuses the cache, the
    other ranks read it after a barrier. A separate reference model is loaded only for this
    and released before the policy trains."""
    d = cfg.dpo
    ref_model = load_model(Path(d.reference) if d.reference else inputs.model_dir)
    rank = dist.get_rank() if dist.is_initialized() else 0
    out = {}
    for k, path in files.items():
        cache = _cache_path(d.reference_cache, k, Path(path))
        pairs = [e.value for e in encoded[k]]
        if rank == 0:
            out[k] = reference_logps(
                ref_model,
                pairs,
                cache,
                d.mask_special_tokens,
                inputs.seq_len,
                inputs.tokenizer.pad_id,
                d.reference_batch_rows,
                d.recompute_reference,
            )
        if dist.is_initialized():
            dist.barrier()
        if rank != 0:
            fingerprints = (
                model_fingerprint(ref_model),
                data_fingerprint(pairs, d.mask_special_tokens),
            )
            out[k] = load_reference_logps(cache, *fingerprints)
    del ref_model  # never in memory while the policy trains
    gc.collect()
    return out


def _cache_path(configured: str, kind: str, data: Path) -> Path:
    """Beside the data by default; with ``dpo.reference_cache`` set, that path for the training
    pairs and a ``.eval`` sibling for the evaluation pairs."""
    if not configured:
        return default_cache_path(data)
    base = Path(configured)
    return base if kind == "train" else base.with_name(f"{base.stem}.{kind}{base.suffix}")
