"""``l3-align sft``: assistant-only cross-entropy on packed multi-turn dialogs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l3_align.config import AlignConfig
from l3_align.data.dataset import encode_sft_file
from l3_align.sft.objective import SFTObjective, sft_items
from l3_align.train.batches import PackedEpochs
from l3_align.train.runner import run_training
from l3_align.train.setup import finish_run, prepare, require_rows
from l3_core.jsonl import Exclusions


def run_sft(
    cfg: AlignConfig,
    model_dir: Path,
    data: Path,
    run_dir: Path,
    eval_data: Path | None = None,
    tokenizer_file: Path | None = None,
) -> dict[str, Any]:
    """Fine-tune the model in ``model_dir`` on the dialogs of ``data``; the run's summary."""
    inputs = prepare(cfg, model_dir, tokenizer_file)
    exclusions = Exclusions()
    files = {"train": data, **({"eval": eval_data} if eval_data else {})}
    encoded = {k: encode_sft_file(p, inputs.encoder, exclusions) for k, p in files.items()}
    for k, p in files.items():
        require_rows(len(encoded[k]), p, exclusions, run_dir)

    def source(k: str, shuffle: bool) -> PackedEpochs:
        return PackedEpochs(
            [sft_items(e.value) for e in encoded[k]],
            inputs.seq_len,
            inputs.tokenizer.pad_id,
            cfg.train.seed,
            shuffle,
            str(files[k]),
        )

    last = run_training(
        SFTObjective(),
        inputs.model,
        source("train", True),
        cfg.train,
        run_dir,
        inputs.tokenizer_file,
        source("eval", False) if eval_data else None,
    )
    counts = {f"{k}_dialogs": len(v) for k, v in encoded.items()}
    return finish_run(run_dir, cfg, exclusions, counts, last)
