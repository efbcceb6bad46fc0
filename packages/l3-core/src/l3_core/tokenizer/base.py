"""The interface every l3 tokenizer offers, and format detection for ``Tokenizer.from_file``."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

from l3_core.errors import TokenizerError


class Tokenizer:
    """Text <-> token ids, with the Llama 3 special tokens after the base vocabulary.

    ``Tokenizer.from_file(path)`` detects the file's format: a tiktoken BPE ranks file (the
    official Llama 3 ``tokenizer.model``) or a sentencepiece model trained by
    :func:`l3_core.tokenizer.train_sentencepiece`.
    """

    kind: str = "abstract"
    special_tokens: dict[str, int]
    path: Path | None = None

    @classmethod
    def from_file(cls, path: str | Path) -> Tokenizer:
        from l3_core.tokenizer.llama3 import Llama3Tokenizer
        from l3_core.tokenizer.sentencepiece_bpe import SentencePieceTokenizer

        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: tokenizer file not found")
        with path.open("rb") as f:  # the head tells the format; the loader reads the rest
            head = f.read(4096)
        if _looks_like_ranks(head):
            return Llama3Tokenizer.from_file(path)
        if _looks_like_sentencepiece(head):
            return SentencePieceTokenizer.from_file(path)
        raise TokenizerError(
            f"{path}: not a tokenizer file: expected a tiktoken BPE ranks file "
            "('<base64 token> <rank>' per line) or a sentencepiece model"
        )

    # -- the interface -----------------------------------------------------------------------

    @property
    def n_words(self) -> int:
        """Vocabulary size including special tokens (the model's ``vocab_size`` lower bound)."""
        raise NotImplementedError

    def encode(
        self,
        text: str,
        *,
        bos: bool,
        eos: bool,
        allowed_special: Literal["all"] | Collection[str] = (),
    ) -> list[int]:
        """Token ids of ``text``; special-token strings are plain text unless allowed."""
        if not isinstance(text, str):
            raise TokenizerError(f"encode expects str, got {type(text).__name__}")
        allowed = self._check_allowed(allowed_special)
        ids: list[int] = [self.bos_id] if bos else []
        ids.extend(self._encode_text(text, allowed))
        if eos:
            ids.append(self.eos_id)
        return ids

    def _encode_text(self, text: str, allowed: set[str]) -> list[int]:
        """The ids of ``text`` alone (no BOS/EOS), the ``allowed`` special strings as tokens."""
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str], *, bos: bool, eos: bool) -> list[list[int]]:
        """Token ids of each of ``texts``, special-token strings as plain text."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    # -- shared helpers ----------------------------------------------------------------------

    @property
    def bos_id(self) -> int:
        return self.special_tokens["<|begin_of_text|>"]

    @property
    def eos_id(self) -> int:
        return self.special_tokens["<|end_of_text|>"]

    @property
    def eot_id(self) -> int:
        return self.special_tokens["<|eot_id|>"]

    @property
    def eom_id(self) -> int:
        return self.special_tokens["<|eom_id|>"]

    @property
    def pad_id(self) -> int:
        return self.special_tokens["<|finetune_right_pad_id|>"]

    @property
    def stop_tokens(self) -> set[int]:
        """Tokens that end generation: end of text, end of turn, end of message."""
        return {self.eos_id, self.eot_id, self.eom_id}

    def fingerprint(self) -> str:
        """A stable identity for shard manifests: kind, vocabulary size and file hash."""
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16] if self.path else "none"
        return f"{self.kind}:{self.n_words}:{digest}"

    def _check_allowed(self, allowed_special: Literal["all"] | Collection[str]) -> set[str]:
        if allowed_special == "all":
            return set(self.special_tokens)
        allowed = set(allowed_special)
        unknown = allowed - set(self.special_tokens)
        if unknown:
            raise TokenizerError(
                f"allowed_special names tokens this tokenizer does not have: {sorted(unknown)}"
            )
        return allowed


def _looks_like_ranks(head: bytes) -> bool:
    import base64
    import binascii

    lines = [ln for ln in head.split(b"\n")[:-1] if ln]  # the last line may be cut
    if not lines:
        return False
    for ln in lines[:50]:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].isdigit():
            return False
        try:
            base64.b64decode(parts[0], validate=True)
        except (binascii.Error, ValueError):
            return False
    return True


def _looks_like_sentencepiece(head: bytes) -> bool:
    # A ModelProto starts with field 1 (pieces, length-delimited): tag byte 0x0A.
    return head[:1] == b"\x0a"
