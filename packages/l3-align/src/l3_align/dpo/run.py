"""``l3-align dpo``: the paper's DPO on preference rows, reference log-probs cached first."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import numpy as np

from l3_align.config import AlignConfig
from l3_align.data.dataset import Encoded, encode_preference_file
from l3_align.dpo.objective import DPOObjective, pair_items
from l3_align.dpo.reference import default_cache_path, reference_logps
from l3_align.train.batches import PackedEpochs
from l3_align.train.runner import run_training
from l3_align.train.setup import RunInputs, finish_run, load_model, prepare, require_rows
from l3_core.jsonl import Exclusions

log = logging.getLogger(__name__)


def run_dpo(
    cfg: AlignConfig,
    model_dir: Path,
    data: Path,
    run_dir: Path,
    eval_data: Path | None = None,
    tokenizer_file: Path | None = None,
) -> dict[str, Any]:
    """Train the model in ``model_dir`` with DPO on ``data``; the summary of the run."""
    inputs = prepare(cfg, model_dir, tokenizer_file)
    d = cfg.dpo
    exclusions = Exclusions()
    files = {"train": data, **({"eval": eval_data} if eval_data else {})}
    encoded = {
        k: encode_preference_file(p, inputs.encoder, exclusions, d.use_edited)
        for k, p in files.items()
    }
    for k, p in files.items():
        require_rows(len(encoded[k]), p, exclusions, run_dir)
    refs = _reference(cfg, inputs, files, encoded)

    def source(k: str, shuffle: bool) -> PackedEpochs:
        groups = [
            pair_items(e.value, d.mask_special_tokens, tuple(r))
            for e, r in zip(encoded[k], refs[k])
        ]
        return PackedEpochs(
            groups,
            inputs.seq_len,
            inputs.tokenizer.pad_id,
            cfg.train.seed,
            shuffle=shuffle,
            where=str(files[k]),
        )

    last = run_training(
        DPOObjective(d),
        inputs.model,
        source("train", True),
        cfg.train,
        run_dir,
        inputs.tokenizer_file,
        source("eval", False) if eval_data else None,
    )
    counts = {f"{k}_pairs": len(v) for k, v in encoded.items()}
    return finish_run(run_dir, cfg, exclusions, counts, last)


def _reference(
    cfg: AlignConfig, inputs: RunInputs, files: dict[str, Path], encoded: dict[str, list[Encoded]]
) -> dict[str, np.ndarray]:
    """Reference log-probs of every file's pairs; a separate reference model is loaded only
    for this and released before the policy trains."""
    d = cfg.dpo
    ref_model = load_model(Path(d.reference)) if d.reference else inputs.model
    out = {}
    for k, path in files.items():
        cache = _cache_path(d.reference_cache, k, Path(path))
        out[k] = reference_logps(
            ref_model,
            [e.value for e in encoded[k]],
            cache,
            d.mask_special_tokens,
            inputs.seq_len,
            inputs.tokenizer.pad_id,
            d.reference_batch_rows,
            d.recompute_reference,
        )
    if ref_model is not inputs.model:
        del ref_model
        gc.collect()
    return out


def _cache_path(configured: str, kind: str, data: Path) -> Path:
    """Beside the data by default; with ``dpo.reference_cache`` set, that path for the training
    pairs and a ``.eval`` sibling for the evaluation pairs."""
    if not configured:
        return default_cache_path(data)
    base = Path(configured)
    return base if kind == "train" else base.with_name(f"{base.stem}.{kind}{base.suffix}")
