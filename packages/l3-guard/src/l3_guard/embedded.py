"""What the embedded models read and answer, shared by their training recipe and inference.

The moderation model has one sigmoid head for "unsafe" and one per Llama Guard 3 category;
Prompt Guard is a softmax over three labels. Both read a message in the form
:func:`moderation_text` gives. The shipped files live in ``l3_guard/models/``;
:func:`load_embedded_model` refuses a file whose heads are not the ones asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from l3_guard.errors import ModelFileError
from l3_guard.taxonomy import CATEGORY_CODES
from l3_guard.text_model import LinearTextModel

MODERATION_HEADS: tuple[str, ...] = ("unsafe", *CATEGORY_CODES)
PROMPT_GUARD_LABELS: tuple[str, ...] = ("BENIGN", "INJECTION", "JAILBREAK")
MODERATION_MODEL = "moderation.npz"
PROMPT_GUARD_MODEL = "prompt_guard.npz"


def moderation_text(text: str) -> str:
    """What the moderation model reads for one message: whitespace runs collapsed to one space
    (a prompt and a response alike)."""
    return " ".join(text.split())


def shipped_model_path(name: str) -> Path:
    """The model file ``name`` shipped in the package."""
    return Path(str(resources.files("l3_guard") / "models" / name))


def load_embedded_model(
    path: str | Path | None, name: str, labels: Sequence[str], what: str
) -> LinearTextModel:
    """Load ``path`` (default: the shipped ``name``) and check that its heads are ``labels``."""
    path = Path(path) if path is not None else shipped_model_path(name)
    model = LinearTextModel.load(path)
    if model.labels != list(labels):
        raise ModelFileError(
            f"{path}: not a {what} model (its heads are {model.labels}, expected {list(labels)})"
        )
    return model
