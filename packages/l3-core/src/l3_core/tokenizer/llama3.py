"""The Llama 3 tokenizer: tiktoken BPE ranks plus the 256 special tokens."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import tiktoken

from l3_core.errors import TokenizerError
from l3_core.tokenizer.base import Tokenizer
from l3_core.tokenizer.special import special_token_ids

PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# tiktoken's Rust core is quadratic on very long runs without whitespace (or of whitespace);
# the reference implementation cuts inputs at these lengths, and so do we, identically.
MAX_ENCODE_CHARS = 400_000
MAX_NO_WHITESPACE_CHARS = 25_000
_LONG_RUN = re.compile(rf"\S{{{MAX_NO_WHITESPACE_CHARS + 1}}}|\s{{{MAX_NO_WHITESPACE_CHARS + 1}}}")


class Llama3Tokenizer(Tokenizer):
    kind = "llama3-tiktoken"

    def __init__(self, mergeable_ranks: dict[bytes, int], path: Path | None = None) -> None:
        self.path = path
        base = len(mergeable_ranks)
        self.special_tokens = special_token_ids(base)
        self.model = tiktoken.Encoding(
            name=path.name if path else "llama3",
            pat_str=PAT_STR,
            mergeable_ranks=mergeable_ranks,
            special_tokens=self.special_tokens,
        )
        self._n_words = base + len(self.special_tokens)

    @classmethod
    def from_file(cls, path: str | Path) -> Llama3Tokenizer:
        path = Path(path)
        return cls(_load_ranks(path), path)

    @property
    def n_words(self) -> int:
        return self._n_words

    def _encode_text(self, text: str, allowed: set[str]) -> list[int]:
        ids: list[int] = []
        for piece in _chunks(text):
            ids.extend(self.model.encode(piece, allowed_special=allowed, disallowed_special=()))
        return ids

    def encode_batch(self, texts: Sequence[str], *, bos: bool, eos: bool) -> list[list[int]]:
        """Encode many plain texts on tiktoken's thread pool (special strings stay text)."""
        short = all(len(t) <= MAX_NO_WHITESPACE_CHARS for t in texts)
        if not short:
            return [self.encode(t, bos=bos, eos=eos) for t in texts]
        out = self.model.encode_ordinary_batch(list(texts))
        head = [self.bos_id] if bos else []
        tail = [self.eos_id] if eos else []
        return [head + ids + tail for ids in out] if (bos or eos) else out

    def decode(self, ids: Sequence[int]) -> str:
        bad = [i for i in ids if not 0 <= int(i) < self._n_words]
        if bad:
            raise TokenizerError(f"token ids out of range [0, {self._n_words}): {bad[:5]}")
        return self.model.decode([int(i) for i in ids])


def _load_ranks(path: Path) -> dict[bytes, int]:
    if not path.is_file():
        raise TokenizerError(f"{path}: tokenizer file not found")
    ranks: dict[bytes, int] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as e:
        raise TokenizerError(f"{path}: cannot read: {e}") from None
    for lineno, line in enumerate(lines, 1):
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            ranks[base64.b64decode(parts[0], validate=True)] = int(parts[1])
        except (ValueError, binascii.Error):
            raise TokenizerError(
                f"{path}:{lineno}: not a BPE ranks file: expected '<base64 token> <rank>', "
                f"got {line[:60]!r}"
            ) from None
    if not ranks:
        raise TokenizerError(f"{path}: BPE ranks file is empty")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerError(f"{path}: BPE ranks must be 0..{len(ranks) - 1} without gaps")
    return ranks


def _chunks(text: str) -> Iterator[str]:
    for i in range(0, len(text), MAX_ENCODE_CHARS):
        part = text[i : i + MAX_ENCODE_CHARS]
        if _LONG_RUN.search(part) is None:
            yield part  # the common case: the split below would return ``part`` whole
        else:
            yield from _split_long_runs(part, MAX_NO_WHITESPACE_CHARS)


def _split_long_runs(s: str, max_len: int) -> Iterator[str]:
    """Cut runs of whitespace or non-whitespace longer than ``max_len``, as the reference does."""
    run_len = 0
    run_is_space = s[0].isspace() if s else False
    start = 0
    for i, ch in enumerate(s):
        is_space = ch.isspace()
        if run_is_space ^ is_space:
            run_len = 1
            run_is_space = is_space
        else:
            run_len += 1
            if run_len > max_len:
                yield s[start:i]
                start = i
                run_len = 1
    yield s[start:]
