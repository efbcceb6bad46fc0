"""What the embedded models read and answer, shared by their training recipe and inference.

The moderation model has one sigmoid head for "unsafe" and one per Llama Guard 3 category;
Prompt Guard is a softmax over three labels. Both read a message in the form
:func:`moderation_text` gives. The shipped files live in ``l3_guard/models/``, two per task:
the n-gram model (no torch) and the encoder model (``*_encoder.npz``, n-grams beside a
pretrained sentence encoder), the default wherever the ``encoder`` extra is installed.
:func:`load_embedded_model` refuses a file whose heads are not the ones asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from l3_guard.encoder import encoder_installed
from l3_guard.errors import ModelFileError
from l3_guard.taxonomy import CATEGORY_CODES
from l3_guard.text_model import LinearTextModel

MODERATION_HEADS: tuple[str, ...] = ("unsafe", *CATEGORY_CODES)
PROMPT_GUARD_LABELS: tuple[str, ...] = ("BENIGN", "INJECTION", "JAILBREAK")
MODERATION_MODEL = "moderation.npz"
PROMPT_GUARD_MODEL = "prompt_guard.npz"
Trunk = Literal["auto", "encoder", "ngram"]
TRUNKS: tuple[str, ...] = ("auto", "encoder", "ngram")


def moderation_text(text: str) -> str:
    """What the moderation model reads for one message: whitespace runs collapsed to one space
    (a prompt and a response alike)."""
    return " ".join(text.split())


def encoder_model_name(name: str) -> str:
    """The encoder variant of a shipped model file name: ``moderation.npz`` ->
    ``moderation_encoder.npz``."""
    stem, _, suffix = name.rpartition(".")
    return f"{stem}_encoder.{suffix}"


def shipped_model_path(name: str, trunk: Trunk = "ngram") -> Path:
    """The shipped model file for ``name``: the encoder variant for ``trunk="encoder"``, and for
    ``"auto"`` when the ``encoder`` extra is installed; else the n-gram model."""
    if trunk not in TRUNKS:
        raise ValueError(f"trunk {trunk!r} is not one of {TRUNKS}")
    if trunk == "encoder" or (trunk == "auto" and encoder_installed()):
        name = encoder_model_name(name)
    return Path(str(resources.files("l3_guard") / "models" / name))


def load_embedded_model(
    path: str | Path | None, name: str, labels: Sequence[str], what: str, trunk: Trunk = "ngram"
) -> LinearTextModel:
    """Load ``path`` (default: the shipped ``name`` for ``trunk``) and check that its heads
    are ``labels``. An encoder model whose encoder cannot load raises, never falls back: the
    caller's ``*_safe`` method then fails closed."""
    path = Path(path) if path is not None else shipped_model_path(name, trunk)
    model = LinearTextModel.load(path)
    if model.labels != list(labels):
        raise ModelFileError(
            f"{path}: not a {what} model (its heads are {model.labels}, expected {list(labels)})"
        )
    return model
