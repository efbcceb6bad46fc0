"""A small trainable BPE tokenizer (sentencepiece) behind the Llama 3 tokenizer interface.

A 128K-entry output head dominates the cost of a tiny model on a CPU, so small-scale
experiments train a few-thousand-piece BPE on their own corpus. The 256 Llama 3 special tokens
follow the base pieces, exactly as they follow the 128,000 ranks of the official tokenizer, so
the chat format and every special id lookup work unchanged.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from l3_core.errors import TokenizerError
from l3_core.io import atomic_write
from l3_core.tokenizer.base import Tokenizer
from l3_core.tokenizer.special import NUM_SPECIAL_TOKENS, special_token_ids


def _sentencepiece():
    try:
        import sentencepiece
    except ImportError:
        raise TokenizerError(
            "the sentencepiece tokenizer needs the 'sentencepiece' package: "
            "pip install 'l3-core[spm]'"
        ) from None
    return sentencepiece


class SentencePieceTokenizer(Tokenizer):
    kind = "sentencepiece-bpe"

    def __init__(self, model_proto: bytes, path: Path | None = None) -> None:
        spm = _sentencepiece()
        self.path = path
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as e:
            where = path or "<bytes>"
            raise TokenizerError(f"{where}: not a sentencepiece model: {e}") from None
        self.base_vocab = self.sp.GetPieceSize()
        self.special_tokens = special_token_ids(self.base_vocab)
        self._id_to_special = {i: t for t, i in self.special_tokens.items()}
        self._special_re = re.compile("|".join(re.escape(t) for t in self.special_tokens))

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"{path}: tokenizer file not found")
        return cls(path.read_bytes(), path)

    @property
    def n_words(self) -> int:
        return self.base_vocab + NUM_SPECIAL_TOKENS

    def _encode_text(self, text: str, allowed: set[str]) -> list[int]:
        ids: list[int] = []
        pos = 0
        if allowed:
            for m in self._special_re.finditer(text):
                if m.group() not in allowed:
                    continue
                ids.extend(self.sp.EncodeAsIds(text[pos : m.start()]))
                ids.append(self.special_tokens[m.group()])
                pos = m.end()
        ids.extend(self.sp.EncodeAsIds(text[pos:]))
        return ids

    def encode_batch(self, texts: Sequence[str], *, bos: bool, eos: bool) -> list[list[int]]:
        out = self.sp.EncodeAsIds(list(texts))
        head = [self.bos_id] if bos else []
        tail = [self.eos_id] if eos else []
        return [head + ids + tail for ids in out]

    def decode(self, ids: Sequence[int]) -> str:
        parts: list[str] = []
        run: list[int] = []
        for i in ids:
            i = int(i)
            if 0 <= i < self.base_vocab:
                run.append(i)
                continue
            if i not in self._id_to_special:
                raise TokenizerError(f"token id {i} out of range [0, {self.n_words})")
            if run:
                parts.append(self.sp.DecodeIds(run))
                run = []
            parts.append(self._id_to_special[i])
        if run:
            parts.append(self.sp.DecodeIds(run))
        return "".join(parts)


def train_sentencepiece(
    texts: Iterable[str],
    output: str | Path,
    vocab_size: int = 7936,
    max_sentence_length: int = 16384,
    max_sentences: int = 0,
) -> SentencePieceTokenizer:
    """Train a byte-fallback BPE on ``texts`` and save it atomically to ``output``.

    The result has ``vocab_size + 256`` ids. Normalisation is off and whitespace is kept
    verbatim, so that decode(encode(text)) == text for code as well as prose. With
    ``max_sentences`` 0 every line is used, in order, so the result is deterministic; a positive
    value samples that many lines (faster on large corpora, not reproducible across runs).
    """
    spm = _sentencepiece()
    buf = io.BytesIO()
    sentences = (line for text in texts for line in text.splitlines() if line.strip())
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=sentences,
            model_writer=buf,
            vocab_size=vocab_size,
            model_type="bpe",
            byte_fallback=True,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            add_dummy_prefix=False,
            split_digits=True,
            allow_whitespace_only_pieces=True,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            unk_id=0,
            max_sentence_length=max_sentence_length,
            input_sentence_size=max_sentences,
            shuffle_input_sentence=max_sentences > 0,
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise TokenizerError(f"sentencepiece training failed: {e}") from None
    output = Path(output)
    with atomic_write(output, "wb") as f:
        f.write(buf.getvalue())
    return SentencePieceTokenizer(buf.getvalue(), output)
