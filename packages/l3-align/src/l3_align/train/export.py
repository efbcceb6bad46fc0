"""``final/`` from a trainer checkpoint: the language model's export (SFT and DPO).

l3-core's trainer checkpoints are l3-format model directories (an objective with a head adds
``output_head.*``, which ``l3_core.checkpoint.load_checkpoint_with_head`` returns apart).
"""

from __future__ import annotations

from pathlib import Path

import torch

from l3_core.checkpoint import load_checkpoint, save_checkpoint
from l3_core.io import atomic_write
from l3_core.model import Transformer


def save_final(model: Transformer, target: Path, tokenizer_file: Path) -> Path:
    """The model in the l3 format, with the tokenizer it was trained with."""
    save_checkpoint(model, target, "l3")
    with atomic_write(target / "tokenizer.model", "wb") as f:
        f.write(Path(tokenizer_file).read_bytes())
    return target


def export_language_model(tokenizer_file: Path):
    """The export of SFT and DPO: the checkpoint's model as ``final/`` in the l3 format."""

    def export(checkpoint: Path, final: Path) -> None:
        model = load_checkpoint(checkpoint, dtype=torch.float32)
        save_final(model, final, tokenizer_file)

    return export
