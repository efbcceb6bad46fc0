"""l3-align's reward-model training against trl's RewardTrainer: same model, rows and run.

Both start from the same weights: the policy's trunk and the score head our run draws from
``train.seed``, written as a ``LlamaForSequenceClassification`` directory for trl. Both train
on the same preference rows of the sorting task, tokenized once (our chat encoding;
:mod:`l3_align.trl_peer`), with the Bradley-Terry loss; every step holds every row once (ours
as the first epoch's packed rows, trl as one batch), so the step-0 losses must agree to 1e-5
(asserted).

Trainers in child processes, in turn over the rounds: ``ours`` (``l3_align.rm.run`` on
l3-core's trainer, prompt-once), ``ours-ckpt`` (the same with ``train.activation_checkpointing``),
``trl`` (its defaults: activation checkpointing on) and ``trl-tuned``
(activation checkpointing off). Prints steps/s (1 / the median step time, the best round),
peak RSS of each process and the same above its imports, and the matmul peak of this run.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _align_common import add_arguments, run_benchmark, timed_ours, timed_trl

TRAINERS = ("ours", "ours-ckpt", "trl", "trl-tuned")
SEED = 0  # train.seed: our head's initialisation


def _import_ours() -> None:
    # what the trainer imports when it starts: Megatron-core's model, optimizer, schedules
    import megatron.core.distributed
    import megatron.core.models.gpt
    import megatron.core.optimizer
    import megatron.core.pipeline_parallel  # noqa: F401

    import l3_align.rm.run  # noqa: F401
    import l3_core.train.loop  # noqa: F401


def _import_trl() -> None:
    import trl  # noqa: F401
    from trl import RewardTrainer  # noqa: F401  (transformers, accelerate, datasets with it)

    import l3_align.trl_peer  # noqa: F401


IMPORTS = {
    "ours": _import_ours,
    "ours-ckpt": _import_ours,
    "trl": _import_trl,
    "trl-tuned": _import_trl,
}


def _encoded(work: Path, seq: int):
    from l3_align.data.encode import ChatEncoder
    from l3_align.rm.preferences import encode_reward_file
    from l3_core.jsonl import Exclusions
    from l3_core.tokenizer import Tokenizer

    tok = Tokenizer.from_file(work / "tokenizer.model")
    return tok, encode_reward_file(work / "pairs.jsonl", ChatEncoder(tok, seq), Exclusions())


def first_epoch_rows(work: Path, seq: int) -> int:
    """Packed rows of the first epoch's order of all rows (our step 0 then holds each once)."""
    from l3_align.rm.objective import reward_items
    from l3_align.train.batches import PackedEpochs

    tok, rows = _encoded(work, seq)
    items = [reward_items(g, p) for g, p in zip(rows.groups, rows.present)]
    return PackedEpochs(items, seq, tok.pad_id, seed=SEED).rows_of_epoch(0).n_rows


def write_start(work: Path) -> None:
    """trl's starting point: our trunk and our run's initial head, transformers' format."""
    from l3_align.rm.checkpoint import save_reward_model
    from l3_align.rm.model import RewardModel
    from l3_align.rm.objective import score_head
    from l3_core.checkpoint import load_checkpoint
    from l3_core.tokenizer import Tokenizer

    trunk = load_checkpoint(work / "policy")
    pad = Tokenizer.from_file(work / "tokenizer.model").pad_id
    start = RewardModel(trunk, score_head(trunk.args, SEED))
    save_reward_model(start, work / "hf_rm", None, pad)


def run_ours(work: Path, opts: argparse.Namespace, checkpointing: bool) -> dict:
    from l3_align.config import AlignConfig
    from l3_align.rm.run import run_reward_training
    from l3_core.config import from_dict

    rows = opts.rows
    cfg = from_dict(
        AlignConfig,
        {
            "train": {"max_steps": opts.steps, "lr": 1e-5, "batch_rows": rows, "seed": SEED,
                      "micro_batch_rows": rows, "resume": False,
                      "activation_checkpointing": checkpointing},
            "data": {"seq_len": opts.seq},
            "rm": {"loss": "bradley_terry"},
        },
    )  # fmt: skip
    return timed_ours(
        lambda run_dir: run_reward_training(cfg, work / "policy", work / "pairs.jsonl", run_dir),
        work,
    )


def run_trl(work: Path, opts: argparse.Namespace, tuned: bool) -> dict:
    from l3_align.trl_peer import reward_trainer

    tok, rows = _encoded(work, opts.seq)
    return timed_trl(
        lambda out: reward_trainer(work / "hf_rm", tok, rows.groups, out, batch=len(rows),
                                   steps=opts.steps, checkpointing=not tuned),
        work,
    )  # fmt: skip


def prepare(work: Path, seq: int) -> int:
    write_start(work)
    return first_epoch_rows(work, seq)


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
    run_benchmark(Path(__file__), opts, bodies, IMPORTS, lambda work: prepare(work, opts.seq))


if __name__ == "__main__":
    main()
