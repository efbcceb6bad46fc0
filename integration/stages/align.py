"""The align stage: RM -> rejection sampling -> SFT -> DPO on the synthetic sorting task.

Part A's SFT and DPO run here (l3_align.proof.sorting_proof); the reward model and rejection
sampling (part B) slot in before SFT, where sorting_proof marks their place.
"""

from __future__ import annotations

from pathlib import Path

from l3_align.proof import sorting_proof


def run(workdir: Path) -> dict:
    return sorting_proof(workdir, sft_steps=150, dpo_steps=60)
