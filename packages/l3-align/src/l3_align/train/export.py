"""``final/`` from a trainer checkpoint, and the checkpoint's weights split from its head.

l3-core's checkpoints hold the plain model's tensors (``l3_core.load_checkpoint`` reads an SFT
or DPO checkpoint as it is) plus, for an objective with a head, ``output_head.*``, which
``load_checkpoint`` refuses as unexpected; :func:`load_trained` is the small adapter that
reads both.
"""

from __future__ import annotations

from pathlib import Path

import torch

from l3_core.checkpoint import native, save_checkpoint
from l3_core.checkpoint.tensors import load_tensors
from l3_core.io import atomic_write
from l3_core.model import Transformer

HEAD_PREFIX = "output_head."


def load_trained(checkpoint: Path) -> tuple[Transformer, dict[str, torch.Tensor]]:
    """The model of a trainer checkpoint (fp32, eval mode) and its head's tensors (names
    without ``output_head.``; empty when the objective has no head)."""
    args = native.read_params(checkpoint)
    tensors = load_tensors(checkpoint)
    head = {
        k.removeprefix(HEAD_PREFIX): tensors.pop(k)
        for k in [k for k in tensors if k.startswith(HEAD_PREFIX)]
    }
    with torch.device("meta"):
        model = Transformer(args)
    model.load_state_dict({k: v.float() for k, v in tensors.items()}, assign=True, strict=True)
    return model.eval(), head


def save_final(model: Transformer, target: Path, tokenizer_file: Path) -> Path:
    """The model in the l3 format, with the tokenizer it was trained with."""
    save_checkpoint(model, target, "l3")
    with atomic_write(target / "tokenizer.model", "wb") as f:
        f.write(Path(tokenizer_file).read_bytes())
    return target


def export_language_model(tokenizer_file: Path):
    """The export of SFT and DPO: the checkpoint's model as ``final/`` in the l3 format."""

    def export(checkpoint: Path, final: Path) -> None:
        model, _ = load_trained(checkpoint)
        save_final(model, final, tokenizer_file)

    return export
