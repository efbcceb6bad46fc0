"""trl's DPOTrainer and RewardTrainer on the very token ids l3-align trains on (extra ``bench``).

The peer of ``benchmarks/bench_align_dpo.py`` and ``bench_align_rm.py`` and of the test that
their losses at step 0 equal ours. Rows go to trl already tokenized (our chat encoding), so
both sides see the same sequences: DPO rows as ``prompt_ids`` / ``chosen_ids`` /
``rejected_ids`` (the prompt ends with the open assistant header; a response is its content
and ``<|eot_id|>``), reward rows as whole ``chosen_ids`` / ``rejected_ids`` sequences. The
tokenizer trl needs for padding is a word-level ``PreTrainedTokenizerFast`` over the same ids
(built locally: no model hub). The trainers record the loss of every step exactly (trl's logs
round it to four digits).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from l3_align.data.encode import EncodedPair
from l3_align.rm.packing import Group
from l3_core.tokenizer import Tokenizer


def hf_tokenizer(tokenizer: Tokenizer) -> Any:
    """A ``PreTrainedTokenizerFast`` whose ids are ``tokenizer``'s (``<id>`` per word)."""
    from tokenizers import Tokenizer as RawTokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    vocab = {f"<{i}>": i for i in range(tokenizer.n_words)}
    raw = RawTokenizer(WordLevel(vocab, unk_token=f"<{tokenizer.pad_id}>"))
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token=f"<{tokenizer.pad_id}>",
        eos_token=f"<{tokenizer.eot_id}>",
        bos_token=f"<{tokenizer.bos_id}>",
    )


def dpo_rows(pairs: Sequence[EncodedPair]) -> list[dict[str, list[int]]]:
    """trl's tokenized preference rows: the shared prompt, then each response (what our
    ``scored`` mask covers)."""
    rows = []
    for p in pairs:
        start = int(p.chosen.scored.argmax())
        rows.append(
            {
                "prompt_ids": p.chosen.tokens[:start].tolist(),
                "chosen_ids": p.chosen.tokens[start:].tolist(),
                "rejected_ids": p.rejected.tokens[int(p.rejected.scored.argmax()) :].tolist(),
            }
        )
    return rows


def reward_rows(groups: Sequence[Group]) -> list[dict[str, list[int]]]:
    """trl's tokenized reward rows: ``prompt + chosen`` and ``prompt + rejected``."""
    return [
        {"chosen_ids": [*g.prompt, *g.responses[0]], "rejected_ids": [*g.prompt, *g.responses[1]]}
        for g in groups
    ]


def _recording(base: type) -> type:
    """``base`` (a trl trainer) that keeps each training step's exact loss in ``losses``."""

    class Recording(base):
        losses: list[float]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            if model.training:
                loss = out[0] if return_outputs else out
                self.losses.append(float(loss.detach()))
            return out

    return Recording


def _common_args(
    out_dir: Path, batch: int, steps: int, lr: float, seed: int, checkpointing: bool
) -> dict[str, Any]:
    """trl's settings matching l3-align's defaults: constant lr, AdamW (0.9, 0.95), no decay,
    clipping at 1.0, fp32 on the CPU, nothing saved or reported; ``checkpointing`` is
    activation (gradient) checkpointing, on by default in trl 1.x."""
    return {
        "gradient_checkpointing": checkpointing,
        "output_dir": str(out_dir),
        "per_device_train_batch_size": batch,
        "max_steps": steps,
        "learning_rate": lr,
        "lr_scheduler_type": "constant",
        "warmup_steps": 0,
        "adam_beta1": 0.9,
        "adam_beta2": 0.95,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "seed": seed,
        "use_cpu": True,
        "bf16": False,
        "save_strategy": "no",
        "report_to": [],
        "logging_steps": max(steps, 1),
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def dpo_trainer(
    policy_dir: str | os.PathLike[str],
    reference_dir: str | os.PathLike[str],
    tokenizer: Tokenizer,
    pairs: Sequence[EncodedPair],
    out_dir: str | os.PathLike[str],
    *,
    batch: int,
    steps: int,
    lr: float = 1e-5,
    beta: float = 0.1,
    precompute_reference: bool = False,
    checkpointing: bool = True,
    seed: int = 0,
) -> Any:
    """trl's ``DPOTrainer`` (sigmoid loss, ``beta``) on ``pairs`` from HF-format checkpoints;
    ``precompute_reference`` is trl's ``precompute_ref_log_probs`` (else the reference model
    stays in memory and runs every step). trl's defaults otherwise."""
    from datasets import Dataset
    from transformers import LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    class PreTokenized(_recording(DPOTrainer)):  # type: ignore[misc]
        def _prepare_dataset(self, dataset, *args: Any, **kwargs: Any):
            return dataset  # already our token ids

    policy = LlamaForCausalLM.from_pretrained(policy_dir, dtype=torch.float32)
    # trl 1.16 cannot build the reference from an in-memory policy (ref_model=None fails)
    reference = LlamaForCausalLM.from_pretrained(reference_dir, dtype=torch.float32)
    args = DPOConfig(
        **_common_args(Path(out_dir), batch, steps, lr, seed, checkpointing),
        beta=beta,
        loss_type=["sigmoid"],
        max_length=None,
        precompute_ref_log_probs=precompute_reference,
    )
    trainer = PreTokenized(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(dpo_rows(pairs)),
        processing_class=hf_tokenizer(tokenizer),
    )
    trainer.losses = []
    return trainer


def reward_trainer(
    reward_model_dir: str | os.PathLike[str],
    tokenizer: Tokenizer,
    groups: Sequence[Group],
    out_dir: str | os.PathLike[str],
    *,
    batch: int,
    steps: int,
    lr: float = 1e-5,
    checkpointing: bool = True,
    seed: int = 0,
) -> Any:
    """trl's ``RewardTrainer`` (Bradley-Terry) on ``groups`` (chosen first, rejected second)
    from a ``LlamaForSequenceClassification`` directory."""
    from datasets import Dataset
    from transformers import LlamaForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    model = LlamaForSequenceClassification.from_pretrained(reward_model_dir, dtype=torch.float32)
    args = RewardConfig(
        **_common_args(Path(out_dir), batch, steps, lr, seed, checkpointing),
        max_length=None,
        center_rewards_coefficient=None,
    )
    trainer = _recording(RewardTrainer)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(reward_rows(groups)),
        processing_class=hf_tokenizer(tokenizer),
    )
    trainer.losses = []
    return trainer
