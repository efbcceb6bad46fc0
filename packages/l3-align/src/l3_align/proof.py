"""The synthetic proof: SFT a tiny model to imitate sorted and unsorted answers, then DPO it
towards the sorted ones, measuring held-out implicit preference accuracy and the share of
greedy generations that are sorted before and after (used by the ``align`` stage and tests)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from l3_align.config import AlignConfig
from l3_align.dpo.run import run_dpo
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
from l3_core.jsonl import write_jsonl
from l3_core.model import Transformer, generate
from l3_core.tokenizer import ChatFormat, Message, Tokenizer


def greedy_sorted_share(model: Transformer, tokenizer: Tokenizer, rows: list[dict]) -> float:
    chat = ChatFormat(tokenizer)
    prompts = [chat.encode_dialog_prompt([Message(**r["messages"][0])]) for r in rows]
    outs = generate(model.eval(), prompts, max_new_tokens=16, stop_tokens=tokenizer.stop_tokens)
    texts = [tokenizer.decode([t for t in o if t not in tokenizer.stop_tokens]) for o in outs]
    hits = [is_sorted_answer(r["messages"][0]["content"], t) for r, t in zip(rows, texts)]
    return sum(hits) / len(hits)


def sorting_proof(
    workdir: Path, sft_steps: int = 150, dpo_steps: int = 60, dpo_lr: float = 5e-4
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
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
    files = {
        "sft": imitation_rows(400, seed=1),
        "pairs": preference_rows(400, seed=7),
        "heldout": preference_rows(64, seed=99),
    }
    for name, rows in files.items():
        write_jsonl(workdir / f"{name}.jsonl", rows)

    def cfg(**train: Any) -> AlignConfig:
        return from_dict(
            AlignConfig,
            {"train": {"batch_rows": 8, "micro_batch_rows": 8, "resume": False, **train}},
        )

    # RM and rejection sampling (part B) go here: they would rank and filter the SFT rows.
    run_sft(
        cfg(max_steps=sft_steps, lr=3e-3, warmup_steps=10),
        base,
        workdir / "sft.jsonl",
        workdir / "sft",
    )
    before = greedy_sorted_share(load_checkpoint(workdir / "sft" / "final"), tok, files["heldout"])
    dpo_cfg = cfg(max_steps=dpo_steps, lr=dpo_lr)
    dpo_cfg.dpo.recompute_reference = True
    summary = run_dpo(
        dpo_cfg,
        workdir / "sft" / "final",
        workdir / "pairs.jsonl",
        workdir / "dpo",
        eval_data=workdir / "heldout.jsonl",
    )
    after = greedy_sorted_share(load_checkpoint(workdir / "dpo" / "final"), tok, files["heldout"])
    return {
        "preference_accuracy_before": 0.5,  # policy == reference: every margin is 0 (a tie)
        "preference_accuracy_after": round(summary["last"]["val_reward_accuracy"], 3),
        "sorted_share_before": round(before, 3),
        "sorted_share_after": round(after, 3),
        "dpo_final_loss": round(summary["last"]["loss"], 4),
    }
