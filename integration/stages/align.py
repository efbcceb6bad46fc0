"""The align stage: one post-training round, RM -> rejection sampling -> SFT -> DPO, on the
main job's pre-trained model (the ``core`` stage's last checkpoint and the built-in corpus's
tokenizer), on the synthetic sorting task (:func:`l3_align.proof.sorting_proof`). It prints the
sorted-answer rate before and after each step. Run alone (``--only align``) it starts from a
fresh tiny model with the task's own tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from l3_align.proof import pretrained_base, sorting_proof


def run(workdir: Path) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted((workdir.parent / "core" / "checkpoints").glob("step_*"))
    base = None
    if checkpoints:
        from l3_core.corpus import stdlib_shards

        base = pretrained_base(workdir, checkpoints[-1], stdlib_shards() / "tokenizer.model")
    figures = sorting_proof(workdir, base)
    figures["base"] = str(checkpoints[-1]) if checkpoints else "fresh tiny model"
    return figures
