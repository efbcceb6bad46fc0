"""One round on the synthetic sorting task, RM -> rejection sampling -> SFT -> DPO: the reward
model's held-out preference accuracy passes 0.9, rejection sampling raises the sorted rate,
SFT on the kept rows raises it, and DPO raises the held-out implicit preference accuracy from
0.5 to above 0.9 and the sorted rate further (about 1 minute on an idle 2-core CPU; measured
2026-12-02: rate 0.016 at the start, RM 0.953, kept rows 0.065, after SFT 0.094, DPO accuracy
0.5 -> 0.938 and rate 0.156)."""

from __future__ import annotations

import pytest

from l3_align.proof import sorting_proof


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    return sorting_proof(tmp_path_factory.mktemp("round"), log=lambda line: None)


def test_the_reward_model_ranks_held_out_pairs(figures):
    assert figures["rm_heldout_accuracy"] > 0.9


def test_rejection_sampling_keeps_more_sorted_answers_than_the_policy_gives(figures):
    assert figures["rs_kept_rate"] > figures["rate_start"]


def test_sft_on_the_kept_rows_raises_the_sorted_rate(figures):
    assert figures["rate_after_sft"] > figures["rate_start"]


def test_dpo_raises_preference_accuracy_and_the_sorted_rate(figures):
    assert figures["preference_accuracy_after"] > 0.9
    assert figures["rate_after_dpo"] > figures["rate_after_sft"]
