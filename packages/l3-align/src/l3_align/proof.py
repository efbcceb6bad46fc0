"""The synthetic proof, one Llama 3 post-training round on a property a program checks (sorted
answers, :mod:`l3_align.synthetic`): RM -> rejection sampling -> SFT -> DPO.

A starting policy first imitates answers that are sorted only half the time (the round's
"previous model"; a pre-trained model alone does not know the chat task). Then the reward
model trains on sorted-over-unsorted pairs (held-out preference accuracy), rejection sampling
keeps the best of K samples of the starting policy by the reward model (the kept answers'
sorted share against the policy's), SFT trains the starting policy on the kept rows, and DPO
trains that on the pairs (held-out implicit preference accuracy, 0.5 before: policy ==
reference). The property rate, the share of greedy answers to held-out prompts that are
sorted, is measured before and after each step. Used by the ``align`` stage and the tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from l3_align.config import AlignConfig
from l3_align.data.encode import ChatEncoder
from l3_align.dpo.run import run_dpo
from l3_align.rm.checkpoint import load_reward_model
from l3_align.rm.run import run_reward_training
from l3_align.sampling.config import SampleRunConfig
from l3_align.sampling.rejection import PromptRow, rejection_sample
from l3_align.sft.run import run_sft
from l3_align.synthetic import (
    imitation_rows,
    is_sorted_answer,
    preference_rows,
    train_task_tokenizer,
)
from l3_core.args import ModelArgs
from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.config import from_dict
from l3_core.jsonl import Exclusions, write_jsonl
from l3_core.model import Transformer, generate
from l3_core.tokenizer import ChatFormat, Message, Tokenizer


def greedy_sorted_share(model: Transformer, tokenizer: Tokenizer, rows: list[dict]) -> float:
    chat = ChatFormat(tokenizer)
    prompts = [chat.encode_dialog_prompt([Message(**r["messages"][0])]) for r in rows]
    outs = generate(model.eval(), prompts, max_new_tokens=16, stop_tokens=tokenizer.stop_tokens)
    texts = [tokenizer.decode([t for t in o if t not in tokenizer.stop_tokens]) for o in outs]
    hits = [is_sorted_answer(r["messages"][0]["content"], t) for r, t in zip(rows, texts)]
    return sum(hits) / len(hits)


def sorted_share(rows: list[dict]) -> float:
    """Share of SFT rows whose answer is the sorted digits of their prompt."""
    hits = [
        is_sorted_answer(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in rows
    ]
    return sum(hits) / max(len(hits), 1)


def tiny_base(workdir: Path) -> Path:
    """A fresh tiny model with the task's own tokenizer (when no pre-trained model is given)."""
    tok = train_task_tokenizer(workdir / "tokenizer.model")
    args = ModelArgs(
        dim=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        vocab_size=tok.n_words,
        multiple_of=32,
        max_seq_len=128,
    )
    base = workdir / "base"
    save_checkpoint(Transformer.build(args, seed=0), base)
    shutil.copyfile(tok.path, base / "tokenizer.model")
    return base


def pretrained_base(workdir: Path, checkpoint: Path, tokenizer: Path) -> Path:
    """The pre-trained checkpoint as a model directory with its tokenizer beside it."""
    base = workdir / "base"
    save_checkpoint(load_checkpoint(checkpoint, dtype=torch.float32), base)
    shutil.copyfile(tokenizer, base / "tokenizer.model")
    return base


def rejection_sampled_rows(
    policy_dir: Path, rm_dir: Path, prompts: list[dict], k: int, seq_len: int
) -> list[dict]:
    """The best of ``k`` samples of each prompt by the reward model, as SFT rows."""
    policy = load_checkpoint(policy_dir, dtype=torch.float32)
    tok = Tokenizer.from_file(policy_dir / "tokenizer.model")
    cfg = from_dict(
        SampleRunConfig,
        {"sample": {"k": k, "max_new_tokens": 16, "engine": "prefix_cache", "seed": 3}},
    )
    rows = [
        PromptRow("prompts", i + 1, tuple(Message(**m) for m in p)) for i, p in enumerate(prompts)
    ]
    encoder = ChatEncoder(tok, seq_len)
    kept = rejection_sample(policy, load_reward_model(rm_dir), encoder, rows, cfg, Exclusions())
    return [{"messages": r["messages"]} for r in kept]


def sorting_proof(
    workdir: Path,
    base: Path | None = None,
    imitation_steps: int = 150,
    rm_steps: int = 120,
    sft_steps: int = 60,
    dpo_steps: int = 60,
    k: int = 8,
    seq_len: int = 128,
    log: Any = print,
) -> dict[str, Any]:
    """Run the round in ``workdir`` from ``base`` (a model directory with its tokenizer; None:
    a fresh tiny model); the figures, each step's property rate logged as it is measured."""
    workdir.mkdir(parents=True, exist_ok=True)
    base = base or tiny_base(workdir)
    tok = Tokenizer.from_file(base / "tokenizer.model")
    files = {
        "imitation": imitation_rows(400, seed=1),
        "pairs": preference_rows(400, seed=7),
        "heldout": preference_rows(64, seed=99),
    }
    for name, rows in files.items():
        write_jsonl(workdir / f"{name}.jsonl", rows)

    def cfg(**train: Any) -> AlignConfig:
        return from_dict(
            AlignConfig,
            {
                "train": {"batch_rows": 8, "micro_batch_rows": 8, "resume": False, **train},
                "data": {"seq_len": seq_len},
            },
        )

    def rate(model_dir: Path) -> float:
        return round(greedy_sorted_share(load_checkpoint(model_dir), tok, files["heldout"]), 3)

    out: dict[str, Any] = {"rate_base": rate(base)}
    run_sft(cfg(max_steps=imitation_steps, lr=3e-3, warmup_steps=10), base,
            workdir / "imitation.jsonl", workdir / "start")  # fmt: skip
    out["rate_start"] = rate(workdir / "start" / "final")
    log(f"starting policy (imitation SFT): sorted rate {out['rate_base']} -> {out['rate_start']}")

    rm = run_reward_training(cfg(max_steps=rm_steps, lr=3e-3, batch_rows=4, micro_batch_rows=4),
                             base, workdir / "pairs.jsonl", workdir / "rm",
                             eval_data=workdir / "heldout.jsonl")  # fmt: skip
    out["rm_heldout_accuracy"] = round(rm["last"]["val_accuracy"], 3)
    log(f"reward model: held-out preference accuracy {out['rm_heldout_accuracy']}")

    prompts = [r["messages"] for r in preference_rows(200, seed=11)]
    kept = rejection_sampled_rows(workdir / "start" / "final", workdir / "rm" / "final",
                                  prompts, k, seq_len)  # fmt: skip
    write_jsonl(workdir / "rs.jsonl", kept)
    out["rs_kept_rate"] = round(sorted_share(kept), 3)
    log(
        f"rejection sampling (best of {k}): sorted rate {out['rate_start']} -> {out['rs_kept_rate']}"
    )

    run_sft(cfg(max_steps=sft_steps, lr=1e-3), workdir / "start" / "final",
            workdir / "rs.jsonl", workdir / "sft")  # fmt: skip
    out["rate_after_sft"] = rate(workdir / "sft" / "final")
    log(f"SFT on the kept rows: sorted rate {out['rate_start']} -> {out['rate_after_sft']}")

    dpo_cfg = cfg(max_steps=dpo_steps, lr=5e-4)
    dpo_cfg.dpo.recompute_reference = True
    dpo = run_dpo(dpo_cfg, workdir / "sft" / "final", workdir / "pairs.jsonl", workdir / "dpo",
                  eval_data=workdir / "heldout.jsonl")  # fmt: skip
    out["preference_accuracy_before"] = 0.5  # policy == reference: every margin is 0 (a tie)
    out["preference_accuracy_after"] = round(dpo["last"]["val_reward_accuracy"], 3)
    out["rate_after_dpo"] = rate(workdir / "dpo" / "final")
    out["dpo_final_loss"] = round(dpo["last"]["loss"], 4)
    log(
        f"DPO: implicit preference accuracy 0.5 -> {out['preference_accuracy_after']}, "
        f"sorted rate {out['rate_after_sft']} -> {out['rate_after_dpo']}"
    )
    return out
