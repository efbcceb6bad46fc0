"""Where the official Llama 3 tokenizer file is found without a model hub."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from l3_core.errors import TokenizerError

ENV_VAR = "L3_TOKENIZER"


def llama3_tokenizer_path() -> Path:
    """The official ``tokenizer.model``: ``$L3_TOKENIZER``, else the one in ``llama-models``.

    ``llama-models`` is located without importing it, since it is installed with ``--no-deps``.
    """
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    spec = importlib.util.find_spec("llama_models")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            candidate = Path(root) / "llama3" / "tokenizer.model"
            if candidate.is_file():
                return candidate
    raise TokenizerError(
        "the Llama 3 tokenizer.model was not found: set $L3_TOKENIZER to its path, or "
        "`pip install --no-deps llama-models` (it ships llama_models/llama3/tokenizer.model)"
    )
