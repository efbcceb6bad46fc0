"""l3-align's DPO against trl's DPOTrainer: the same tiny model, the same rows, the same run.

Both start from the same policy and the same (different) reference model, exported to the HF
format for trl, and train on the same preference rows of the sorting task, tokenized once
(our chat encoding; :mod:`l3_align.trl_peer`). Every step holds every row once: ours as the
first epoch's packed rows (``train.batch_rows`` set to their count), trl as one batch. The
loss is the paper's sigmoid DPO (beta 0.1) without our extras (no NLL term, formatting tokens
kept), which trl computes too: the step-0 losses must agree to 1e-5 (asserted).

Trainers in child processes, in turn over the rounds: ``ours`` (``l3_align.dpo.run``
on l3-core's trainer: reference log-probs computed once before training, the reference model
released), ``ours-ckpt`` (the same with ``train.activation_checkpointing``), ``trl`` (its defaults: the reference model in memory and run every step,
activation checkpointing on) and ``trl-tuned`` (``precompute_ref_log_probs``, activation
checkpointing off: its fastest settings here). Prints steps/s (1 / the median step
time, the best round), peak RSS of each process and the same above its imports, and the
matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _align_common import add_arguments, run_benchmark, timed_ours, timed_trl

TRAINERS = ("ours", "ours-ckpt", "trl", "trl-tuned")


def _import_ours() -> None:
    # what the trainer imports when it starts: Megatron-core's model, optimizer, schedules
    import megatron.core.distributed
    import megatron.core.models.gpt
    import megatron.core.optimizer
    import megatron.core.pipeline_parallel  # noqa: F401

    import l3_align.dpo.run  # noqa: F401
    import l3_core.train.loop  # noqa: F401


def _import_trl() -> None:
    import trl  # noqa: F401
    from trl import DPOTrainer  # noqa: F401  (transformers, accelerate, datasets with it)

    import l3_align.trl_peer  # noqa: F401


IMPORTS = {
    "ours": _import_ours,
    "ours-ckpt": _import_ours,
    "trl": _import_trl,
    "trl-tuned": _import_trl,
}


def first_epoch_rows(work: Path, seq: int) -> int:
    """Packed rows of the first epoch's order of all pairs (our step 0 then holds each once)."""
    from l3_align.data.dataset import encode_preference_file
    from l3_align.data.encode import ChatEncoder
    from l3_align.dpo.objective import pair_items
    from l3_align.train.batches import PackedEpochs
    from l3_core.jsonl import Exclusions
    from l3_core.tokenizer import Tokenizer

    tok = Tokenizer.from_file(work / "tokenizer.model")
    pairs = encode_preference_file(work / "pairs.jsonl", ChatEncoder(tok, seq), Exclusions())
    items = [pair_items(e.value, False) for e in pairs]
    return PackedEpochs(items, seq, tok.pad_id, seed=0).rows_of_epoch(0).n_rows


def run_ours(work: Path, opts: argparse.Namespace, checkpointing: bool) -> dict:
    from l3_align.config import AlignConfig
    from l3_align.dpo.run import run_dpo
    from l3_core.config import from_dict

    rows = opts.rows
    cfg = from_dict(
        AlignConfig,
        {
            "train": {"max_steps": opts.steps, "lr": 1e-5, "batch_rows": rows,
                      "micro_batch_rows": rows, "resume": False,
                      "activation_checkpointing": checkpointing},
            "data": {"seq_len": opts.seq},
            "dpo": {"beta": 0.1, "losses": {"sigmoid": 1.0}, "mask_special_tokens": False,
                    "reference": str(work / "reference"), "recompute_reference": True},
        },
    )  # fmt: skip
    return timed_ours(
        lambda run_dir: run_dpo(cfg, work / "policy", work / "pairs.jsonl", run_dir), work
    )


def run_trl(work: Path, opts: argparse.Namespace, tuned: bool) -> dict:
    from l3_align.data.dataset import encode_preference_file
    from l3_align.data.encode import ChatEncoder
    from l3_align.trl_peer import dpo_trainer
    from l3_core.jsonl import Exclusions
    from l3_core.tokenizer import Tokenizer

    tok = Tokenizer.from_file(work / "tokenizer.model")
    encoded = encode_preference_file(work / "pairs.jsonl", ChatEncoder(tok, opts.seq), Exclusions())
    pairs = [e.value for e in encoded]
    return timed_trl(
        lambda out: dpo_trainer(work / "hf_policy", work / "hf_reference", tok, pairs, out,
                                batch=len(pairs), steps=opts.steps,
                                precompute_reference=tuned, checkpointing=not tuned),
        work,
    )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    add_arguments(p, TRAINERS)
    opts = p.parse_args()
    warnings.filterwarnings("ignore")
    bodies = {
        "ours": lambda: run_ours(opts.work, opts, checkpointing=False),
        "ours-ckpt": lambda: run_ours(opts.work, opts, checkpointing=True),
        "trl": lambda: run_trl(opts.work, opts, tuned=False),
        "trl-tuned": lambda: run_trl(opts.work, opts, tuned=True),
    }
    run_benchmark(
        Path(__file__), opts, bodies, IMPORTS, lambda work: first_epoch_rows(work, opts.seq)
    )


if __name__ == "__main__":
    main()
