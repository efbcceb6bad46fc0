"""The two row kinds l3-align reads, and their validation.

SFT rows are ``{"messages": [{"role", "content", "tool_call"?}, ...]}`` (the loss is on the
assistant turns only). Preference rows are ``{"messages": [prompt turns], "chosen": str,
"rejected": str, "edited": str?}``: the responses are assistant turns that follow the prompt.
Other top-level keys (ids, sources) are kept out of the way, never an error; message keys are
exactly ``role``, ``content`` and the optional ``tool_call`` (an assistant turn that calls a
tool: it starts with ``<|python_tag|>`` and ends with ``<|eom_id|>``).

Validation returns the reason a row is unusable as :class:`RowError`; readers turn it into an
exclusion with the file and line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from l3_core.tokenizer.chat import ROLES, Message

_MESSAGE_KEYS = frozenset({"role", "content", "tool_call"})


class RowError(ValueError):
    """Why one row cannot be used (becomes an exclusion; never escapes a reader)."""


@dataclass(frozen=True)
class SFTRow:
    source: str
    line: int
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class PreferenceRow:
    source: str
    line: int
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    edited: str | None = None

    def preferred(self, use_edited: bool) -> str:
        """The response trained as preferred: the edited one when present (the paper ranks
        edited > chosen > rejected) and ``use_edited``, else the chosen one."""
        return self.edited if use_edited and self.edited is not None else self.chosen


def parse_messages(value: Any, field: str = "messages") -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise RowError(f"field {field!r} must be a list of messages, got {type(value).__name__}")
    if not value:
        raise RowError(f"field {field!r} is empty")
    return tuple(_parse_message(m, f"{field}[{i}]") for i, m in enumerate(value))


def _parse_message(m: Any, where: str) -> Message:
    if not isinstance(m, Mapping):
        raise RowError(f"{where} must be an object, got {type(m).__name__}")
    unknown = sorted(set(m) - _MESSAGE_KEYS)
    if unknown:
        raise RowError(
            f"{where} has unknown field {unknown[0]!r}; fields are role, content, tool_call"
        )
    for key in ("role", "content"):
        if key not in m:
            raise RowError(f"{where} is missing field {key!r}")
    role, content = m["role"], m["content"]
    if role not in ROLES:
        raise RowError(f"{where}.role {role!r} is unknown; roles are {', '.join(ROLES)}")
    if not isinstance(content, str):
        raise RowError(f"{where}.content must be a string, got {type(content).__name__}")
    tool_call = m.get("tool_call", False)
    if not isinstance(tool_call, bool):
        raise RowError(f"{where}.tool_call must be true or false, got {tool_call!r}")
    if tool_call and role != "assistant":
        raise RowError(
            f"{where}.tool_call is set on a {role!r} turn; only assistant turns call tools"
        )
    return Message(role=role, content=content, tool_call=tool_call)


def parse_sft_row(row: Mapping[str, Any], source: str, line: int) -> SFTRow:
    if "messages" not in row:
        raise RowError("missing field 'messages'")
    messages = parse_messages(row["messages"])
    assistant = [m for m in messages if m.role == "assistant"]
    if not assistant:
        raise RowError("field 'messages' has no assistant turn (nothing to train on)")
    for i, m in enumerate(messages):
        if m.role == "assistant" and not m.content.strip():
            raise RowError(f"messages[{i}] is an empty assistant turn")
    return SFTRow(source, line, messages)


def parse_preference_row(row: Mapping[str, Any], source: str, line: int) -> PreferenceRow:
    for key in ("messages", "chosen", "rejected"):
        if key not in row:
            raise RowError(f"missing field {key!r}")
    prompt = parse_messages(row["messages"])
    if prompt[-1].role == "assistant":
        raise RowError(
            "field 'messages' ends with an assistant turn; the prompt must end before the response"
        )
    responses = {k: _response(row, k) for k in ("chosen", "rejected")}
    edited = _response(row, "edited") if row.get("edited") is not None else None
    if responses["chosen"].strip() == responses["rejected"].strip():
        raise RowError("fields 'chosen' and 'rejected' are identical")
    if edited is not None and edited.strip() == responses["rejected"].strip():
        raise RowError("fields 'edited' and 'rejected' are identical")
    return PreferenceRow(source, line, prompt, responses["chosen"], responses["rejected"], edited)


def _response(row: Mapping[str, Any], key: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise RowError(f"field {key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise RowError(f"field {key!r} is empty")
    return value


def to_json(r: SFTRow | PreferenceRow) -> dict[str, Any]:
    """The row as it would be written (for round trips and generated data)."""

    def msgs(ms: tuple[Message, ...]) -> list[dict[str, Any]]:
        return [
            {"role": m.role, "content": m.content, **({"tool_call": True} if m.tool_call else {})}
            for m in ms
        ]

    if isinstance(r, SFTRow):
        return {"messages": msgs(r.messages)}
    out: dict[str, Any] = {"messages": msgs(r.prompt), "chosen": r.chosen, "rejected": r.rejected}
    if r.edited is not None:
        out["edited"] = r.edited
    return out
