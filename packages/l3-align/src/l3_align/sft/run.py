"""``l3-align sft``: assistant-only cross-entropy on packed multi-turn dialogs, on the parallel
trainer (the task for :func:`l3_align.train.job.run_job`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from l3_align.config import AlignConfig
from l3_align.data.dataset import encode_sft_file
from l3_align.data.packing import place_groups
from l3_align.sft.objective import SFTObjective, sft_items
from l3_align.train.export import export_language_model
from l3_align.train.job import AlignJob, Task, register_task, run_task
from l3_align.train.packed import PackedSource, packed_source
from l3_align.train.plain import TokenLosses
from l3_align.train.setup import RunInputs, require_rows
from l3_core.checkpoint import load_checkpoint
from l3_core.jsonl import Exclusions


def run_sft(
    cfg: AlignConfig,
    model_dir: Path,
    data: Path,
    run_dir: Path,
    eval_data: Path | None = None,
    tokenizer_file: Path | None = None,
    nproc: int = 1,
) -> dict[str, Any]:
    """Fine-tune the model in ``model_dir`` on the dialogs of ``data``; the run's summary."""
    return run_task("sft", cfg, model_dir, data, run_dir, eval_data, tokenizer_file, nproc)


@register_task("sft")
def sft_task(cfg: AlignConfig, inputs: RunInputs, job: AlignJob) -> Task:
    exclusions = Exclusions()
    files = {"train": Path(job.data), **({"eval": Path(job.eval_data)} if job.eval_data else {})}
    encoded = {k: encode_sft_file(p, inputs.encoder, exclusions) for k, p in files.items()}
    for k, p in files.items():
        require_rows(len(encoded[k]), p, exclusions, Path(job.run_dir))
    groups = {k: [sft_items(e.value) for e in v] for k, v in encoded.items()}
    held = "eval" if "eval" in files else "train"
    pad = inputs.tokenizer.pad_id

    def data(run_cfg) -> PackedSource:
        return packed_source(groups, inputs.seq_len, pad, cfg.train.seed, cfg.train.batch_rows,
                             inputs.tokenizer.fingerprint(), job.data)  # fmt: skip

    lengths = [sum(len(i.tokens) for i in g) for g in groups[held]]
    return Task(
        SFTObjective(data),
        {f"{k}_dialogs": len(v) for k, v in encoded.items()},
        exclusions,
        len(place_groups(lengths, inputs.seq_len)) if held == "eval" else cfg.train.batch_rows,
        export_language_model(inputs.tokenizer_file),
        lambda final: TokenLosses(load_checkpoint(final)),
        has_eval=held == "eval",
    )
