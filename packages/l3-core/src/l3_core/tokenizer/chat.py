"""The Llama 3.1 chat format: header-delimited messages ending in <|eot_id|> or <|eom_id|>."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from l3_core.errors import TokenizerError
from l3_core.tokenizer.base import Tokenizer

Role = Literal["system", "user", "assistant", "ipython"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "ipython")


@dataclass(frozen=True)
class Message:
    role: Role
    content: str
    # An assistant message that calls a tool ends with <|eom_id|> (it waits for the tool's
    # answer) and starts with <|python_tag|> when the call is Python code.
    tool_call: bool = False


class ChatFormat:
    """Encodes dialogs the way Llama 3.1 was trained on them."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        sp = tokenizer.special_tokens
        self.start_header = sp["<|start_header_id|>"]
        self.end_header = sp["<|end_header_id|>"]
        self.python_tag = sp["<|python_tag|>"]

    def encode_header(self, role: str) -> list[int]:
        if role not in ROLES:
            raise TokenizerError(f"unknown chat role {role!r}; roles are {', '.join(ROLES)}")
        return [
            self.start_header,
            *self.tokenizer.encode(role, bos=False, eos=False),
            self.end_header,
            *self.tokenizer.encode("\n\n", bos=False, eos=False),
        ]

    def encode_message(self, message: Message) -> list[int]:
        ids = self.encode_header(message.role)
        if message.tool_call:
            ids.append(self.python_tag)
        ids.extend(self.tokenizer.encode(message.content.strip(), bos=False, eos=False))
        ids.append(self.tokenizer.eom_id if message.tool_call else self.tokenizer.eot_id)
        return ids

    def encode_dialog_prompt(
        self, messages: Sequence[Message], add_generation_prompt: bool = True
    ) -> list[int]:
        """``<|begin_of_text|>`` + messages (+ an open assistant header to generate into)."""
        ids = [self.tokenizer.bos_id]
        for m in messages:
            ids.extend(self.encode_message(_as_message(m)))
        if add_generation_prompt:
            ids.extend(self.encode_header("assistant"))
        return ids


def _as_message(m: Message | dict) -> Message:
    if isinstance(m, Message):
        return m
    try:
        return Message(role=m["role"], content=m["content"], tool_call=m.get("tool_call", False))
    except (KeyError, TypeError):
        raise TokenizerError(f"chat message must have 'role' and 'content', got {m!r}") from None
