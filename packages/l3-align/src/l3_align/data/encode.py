"""Rows as token ids in the Llama 3.1 chat format, with the masks training needs.

Each encoded sequence carries two masks over its tokens:

- ``scored``: the token is a training target: every token of an assistant turn after its
  header (its content, ``<|python_tag|>`` for a tool call, and the ``<|eot_id|>`` or
  ``<|eom_id|>`` that ends it), so the model learns to stop; prompts are never scored.
- ``special``: the token is one of the Llama 3 special ids (headers, ends of turn, tags). DPO
  leaves these out of the chosen and rejected log-probs (paper section 4.1.4: formatting tokens
  in both responses pull the loss in opposite directions and cause repetition or early stops).

A sequence longer than the maximum is handled by a named truncation policy
(:data:`TRUNCATIONS`); what still does not fit, or keeps nothing to score, is rejected. A
preference pair is packed into one row (chosen and rejected side by side, so a row-wise split
never separates them), so the maximum bounds the two sequences together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from l3_align.data.rows import PreferenceRow, RowError, SFTRow
from l3_align.errors import AlignConfigError, AlignModelError
from l3_core.args import ModelArgs
from l3_core.tokenizer import ChatFormat, Message, Tokenizer


@dataclass(frozen=True)
class EncodedSequence:
    tokens: np.ndarray  # int64 [n]
    scored: np.ndarray  # bool [n]
    special: np.ndarray  # bool [n]

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, sl: slice) -> EncodedSequence:
        return EncodedSequence(self.tokens[sl], self.scored[sl], self.special[sl])

    @staticmethod
    def concat(parts: Sequence[EncodedSequence]) -> EncodedSequence:
        return EncodedSequence(
            np.concatenate([p.tokens for p in parts]),
            np.concatenate([p.scored for p in parts]),
            np.concatenate([p.special for p in parts]),
        )


@dataclass(frozen=True)
class EncodedPair:
    """A preference row: the preferred and the rejected sequence, each prompt + response."""

    chosen: EncodedSequence
    rejected: EncodedSequence


class _Truncation:
    """How a too-long sequence is shortened: ``dialog`` for SFT, ``pair`` for preferences."""

    name = ""

    def dialog(self, seq: EncodedSequence, max_len: int) -> EncodedSequence:
        raise NotImplementedError

    def pair(
        self, prompt: EncodedSequence, responses: Sequence[EncodedSequence], max_len: int
    ) -> list[EncodedSequence]:
        raise NotImplementedError


def _pair_length(prompt: EncodedSequence, responses: Sequence[EncodedSequence]) -> int:
    return sum(len(prompt) + len(r) for r in responses)


class _Reject(_Truncation):
    name = "reject"

    def dialog(self, seq: EncodedSequence, max_len: int) -> EncodedSequence:
        if len(seq) > max_len:
            raise RowError(_too_long(len(seq), max_len, self.name))
        return seq

    def pair(self, prompt, responses, max_len):
        if _pair_length(prompt, responses) > max_len:
            raise RowError(_too_long(_pair_length(prompt, responses), max_len, self.name))
        return [EncodedSequence.concat([prompt, r]) for r in responses]


class _KeepStart(_Truncation):
    """Cut the end: the last assistant tokens (and the response ends) are lost."""

    name = "keep_start"

    def dialog(self, seq, max_len):
        return seq[:max_len]

    def pair(self, prompt, responses, max_len):
        budget = (max_len - len(responses) * len(prompt)) // len(responses)
        if budget < 1:
            raise RowError(
                _too_long(_pair_length(prompt, responses), max_len, self.name)
                + " (the prompts alone)"
            )
        return [EncodedSequence.concat([prompt, r[:budget]]) for r in responses]


class _KeepEnd(_Truncation):
    """Drop the oldest tokens after ``<|begin_of_text|>``: the start of the conversation is
    lost; for pairs the same prompt tokens go from both, so the prompts stay equal."""

    name = "keep_end"

    def dialog(self, seq, max_len):
        if len(seq) <= max_len:
            return seq
        return EncodedSequence.concat([seq[:1], seq[len(seq) - max_len + 1 :]])

    def pair(self, prompt, responses, max_len):
        excess = _pair_length(prompt, responses) - max_len
        if excess > 0:
            drop = -(-excess // len(responses))
            if drop > len(prompt) - 1:
                raise RowError(
                    _too_long(_pair_length(prompt, responses), max_len, self.name)
                    + " (the responses alone)"
                )
            prompt = EncodedSequence.concat([prompt[:1], prompt[1 + drop :]])
        return [EncodedSequence.concat([prompt, r]) for r in responses]


TRUNCATIONS: dict[str, _Truncation] = {t.name: t for t in (_Reject(), _KeepStart(), _KeepEnd())}


def _too_long(n: int, max_len: int, policy: str) -> str:
    return f"{n} tokens exceed the sequence length {max_len} after truncation {policy!r}"


def truncation_named(name: str) -> _Truncation:
    if name not in TRUNCATIONS:
        raise AlignConfigError(
            f"data.truncation = {name!r} is unknown; policies: {', '.join(TRUNCATIONS)}"
        )
    return TRUNCATIONS[name]


class ChatEncoder:
    """Encodes SFT dialogs and preference pairs for sequences of at most ``max_len`` tokens."""

    def __init__(self, tokenizer: Tokenizer, max_len: int, truncation: str = "reject") -> None:
        self.tokenizer = tokenizer
        self.chat = ChatFormat(tokenizer)
        self.max_len = max_len
        self.truncation = truncation_named(truncation)
        self._special_ids = np.array(sorted(tokenizer.special_tokens.values()), dtype=np.int64)

    # -- pieces ------------------------------------------------------------------------------

    def _piece(self, ids: list[int], scored_from: int | None) -> EncodedSequence:
        tokens = np.asarray(ids, dtype=np.int64)
        scored = np.zeros(len(tokens), dtype=bool)
        if scored_from is not None:
            scored[scored_from:] = True
        return EncodedSequence(tokens, scored, np.isin(tokens, self._special_ids))

    def _message(self, m: Message) -> EncodedSequence:
        ids = self.chat.encode_message(m)
        header = len(self.chat.encode_header(m.role))
        return self._piece(ids, header if m.role == "assistant" else None)

    def prompt(self, messages: Sequence[Message]) -> EncodedSequence:
        """``<|begin_of_text|>``, the turns, and an open assistant header (nothing scored)."""
        return self._piece(self.chat.encode_dialog_prompt(list(messages)), None)

    def response(self, text: str) -> EncodedSequence:
        """An assistant response after its header: content and ``<|eot_id|>``, all scored."""
        ids = self.tokenizer.encode(text.strip(), bos=False, eos=False)
        return self._piece([*ids, self.tokenizer.eot_id], 0)

    # -- rows --------------------------------------------------------------------------------

    def encode_sft(self, row: SFTRow) -> EncodedSequence:
        parts = [self._piece([self.tokenizer.bos_id], None)]
        parts += [self._message(m) for m in row.messages]
        seq = self.truncation.dialog(EncodedSequence.concat(parts), self.max_len)
        if not seq.scored.any():
            raise RowError(f"no assistant token left after truncation {self.truncation.name!r}")
        return seq

    def encode_pair(self, row: PreferenceRow, use_edited: bool = True) -> EncodedPair:
        responses = [self.response(row.preferred(use_edited)), self.response(row.rejected)]
        chosen, rejected = self.truncation.pair(self.prompt(row.prompt), responses, self.max_len)
        for name, seq in (("chosen", chosen), ("rejected", rejected)):
            if not (seq.scored & ~seq.special).any():
                raise RowError(
                    f"{name} has no response token left after truncation {self.truncation.name!r}"
                )
        return EncodedPair(chosen, rejected)


def check_tokenizer_fits(tokenizer: Tokenizer, args: ModelArgs, where: str) -> None:
    """The tokenizer's ids must be the model's: every id inside the vocabulary, and the
    vocabulary not larger than the ids plus padding to a multiple (at most 1024 unused rows)."""
    n, vocab = tokenizer.n_words, args.vocab_size
    if n > vocab or vocab - n >= 1024:
        raise AlignModelError(
            f"{where}: tokenizer {tokenizer.path or tokenizer.kind} has {n} ids but the model's "
            f"vocab_size is {vocab}: it is not this model's tokenizer (pass --tokenizer FILE)"
        )
