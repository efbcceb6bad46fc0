"""One round on the synthetic sorting task, RM -> rejection sampling -> SFT -> DPO: the reward
model's held-out preference accuracy passes 0.9, rejection sampling and SFT on its rows raise
the sorted rate, and DPO raises the held-out implicit preference accuracy from 0.5 to above
0.9 and the sorted rate again (several CPU minutes)."""

from __future__ import annotations

from l3_align.proof import sorting_proof


def test_the_round_raises_the_sorted_rate_at_each_step(tmp_path):
    f = sorting_proof(tmp_path, log=lambda line: None)
    assert f["rm_heldout_accuracy"] > 0.9
    assert f["rs_kept_rate"] > f["rate_start"]
    assert f["rate_after_sft"] > f["rate_start"]
    assert f["preference_accuracy_after"] > 0.9
    assert f["rate_after_dpo"] > f["rate_after_sft"]
