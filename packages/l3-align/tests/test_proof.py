"""The proof's rejection-sampling step raises the property rate: the best of K samples of a
policy that sorts about half its answers, kept by a trained reward model, are sorted far more
often than the policy's own greedy answers."""

from __future__ import annotations

from l3_align.config import AlignConfig
from l3_align.proof import greedy_sorted_share, rejection_sampled_rows, sorted_share
from l3_align.rm.run import run_reward_training
from l3_align.sft.run import run_sft
from l3_align.synthetic import imitation_rows, preference_rows
from l3_core.checkpoint import load_checkpoint
from l3_core.config import from_dict
from l3_core.jsonl import write_jsonl


def _cfg(**train) -> AlignConfig:
    return from_dict(AlignConfig, {"train": {"resume": False, **train}})


def test_rejection_sampling_raises_the_sorted_rate(model_dir, tokenizer, tmp_path):
    write_jsonl(tmp_path / "imitation.jsonl", imitation_rows(200, seed=1))
    write_jsonl(tmp_path / "pairs.jsonl", preference_rows(400, seed=7))
    start = tmp_path / "start"
    run_sft(_cfg(max_steps=100, lr=3e-3, batch_rows=2, micro_batch_rows=2),
            model_dir, tmp_path / "imitation.jsonl", start)  # fmt: skip
    run_reward_training(_cfg(max_steps=100, lr=3e-3, batch_rows=4, micro_batch_rows=4),
                        model_dir, tmp_path / "pairs.jsonl", tmp_path / "rm")  # fmt: skip
    prompts = preference_rows(32, seed=11)
    before = greedy_sorted_share(load_checkpoint(start / "final"), tokenizer, prompts)
    kept = rejection_sampled_rows(
        start / "final", tmp_path / "rm" / "final", [r["messages"] for r in prompts], 8, 128
    )
    assert len(kept) == len(prompts)
    assert sorted_share(kept) > before + 0.2
