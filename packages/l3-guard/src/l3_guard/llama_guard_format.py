"""The Llama Guard 3 prompt, and a strict parser of its answer.

The prompt layout follows llama-recipes' ``PROMPT_TEMPLATE_3`` and the model's Hugging Face
chat template (``layout="hf"``, the default: a blank line after each header, as the released
weights saw in training; ``layout="recipes"``: one space, as in llama-recipes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from l3_guard.errors import GuardInputError
from l3_guard.taxonomy import Taxonomy

Role = Literal["user", "agent"]
_ROLE_NAMES = {"user": "User", "agent": "Agent"}
_INSTRUCTIONS = (
    "Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:\n"
    " - First line must read 'safe' or 'unsafe'.\n"
    " - If unsafe, a second line must include a comma-separated list of violated categories."
)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation; ``role`` is ``user`` or ``agent`` (assistant)."""

    role: Role
    content: str


def as_turns(conversation: str | Sequence[Turn | dict], role: Role = "user") -> list[Turn]:
    """Normalise a text (one ``role`` turn) or a list of turns / ``{"role", "content"}`` dicts.

    ``assistant`` is accepted for ``agent``. Raises :class:`GuardInputError` on empty or
    malformed conversations.
    """
    if isinstance(conversation, str):
        turns = [Turn(role, conversation)]
    else:
        turns = []
        for i, t in enumerate(conversation):
            if isinstance(t, Turn):
                turns.append(t)
                continue
            if not isinstance(t, dict) or not isinstance(t.get("content"), str):
                raise GuardInputError(
                    f"conversation turn {i}: expected {{'role', 'content': str}}, got {t!r:.80}"
                )
            r = {"assistant": "agent"}.get(t.get("role", ""), t.get("role", ""))
            if r not in _ROLE_NAMES:
                raise GuardInputError(
                    f"conversation turn {i}: role {t.get('role')!r} not in user|agent|assistant"
                )
            turns.append(Turn(r, t["content"]))
    if not turns:
        raise GuardInputError("empty conversation")
    for i, t in enumerate(turns):
        if t.role not in _ROLE_NAMES:
            raise GuardInputError(f"conversation turn {i}: role {t.role!r} not in user|agent")
        if not t.content.strip():
            raise GuardInputError(f"conversation turn {i}: empty text")
    return turns


def build_prompt(
    conversation: str | Sequence[Turn | dict],
    taxonomy: Taxonomy | None = None,
    role: Role | None = None,
    *,
    with_descriptions: bool = False,
    layout: Literal["hf", "recipes"] = "hf",
) -> str:
    """The full Llama Guard 3 prompt (special tokens as text) classifying the last ``role`` turn.

    ``role`` defaults to the role of the last turn: ``user`` (prompt classification) or
    ``agent`` (response classification).
    """
    taxonomy = taxonomy or Taxonomy.default()
    turns = as_turns(conversation, role or "user")
    who = _ROLE_NAMES[role or turns[-1].role]
    convo = "\n\n".join(f"{_ROLE_NAMES[t.role]}: {t.content.strip()}" for t in turns)
    body = (
        f"Task: Check if there is unsafe content in '{who}' messages in conversations according "
        "our safety policy with the below categories.\n\n"
        f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{taxonomy.prompt_block(with_descriptions)}\n"
        "<END UNSAFE CONTENT CATEGORIES>\n\n"
        f"<BEGIN CONVERSATION>\n\n{convo}\n\n<END CONVERSATION>\n\n"
        + _INSTRUCTIONS.format(role=who)
    )
    if layout == "hf":
        return (
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
            f"{body}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
    if layout == "recipes":
        return (
            f"<|begin_of_text|><|start_header_id|>user<|end_header_id|> {body} "
            "<|eot_id|><|start_header_id|>assistant<|end_header_id|>"
        )
    raise GuardInputError(f"layout {layout!r} not in ('hf', 'recipes')")


@dataclass
class ParsedVerdict:
    """A parsed answer. ``malformed`` answers are unsafe, with ``raw`` kept for audit."""

    label: Literal["safe", "unsafe"]
    categories: list[str] = field(default_factory=list)
    raw: str = ""
    malformed: bool = False
    problem: str | None = None


def parse_output(text: str, taxonomy: Taxonomy | None = None) -> ParsedVerdict:
    """Read ``safe`` or ``unsafe\\nS1,S10`` strictly; anything else is unsafe and malformed.

    Category codes are mapped from prompt numbering back to the taxonomy's own codes; an
    unknown code makes the answer malformed (unsafe), keeping the codes that were understood.
    """
    taxonomy = taxonomy or Taxonomy.default()
    raw = text
    lines = [
        ln.strip() for ln in text.replace("<|eot_id|>", "\n").strip().splitlines() if ln.strip()
    ]
    if not lines:
        return ParsedVerdict("unsafe", [], raw, True, "empty answer")
    head = lines[0].lower()
    if head == "safe":
        if len(lines) > 1:
            return ParsedVerdict("unsafe", [], raw, True, "text after 'safe'")
        return ParsedVerdict("safe", [], raw)
    if head != "unsafe":
        return ParsedVerdict(
            "unsafe", [], raw, True, f"first line {lines[0][:40]!r} is neither safe nor unsafe"
        )
    if len(lines) < 2:
        return ParsedVerdict("unsafe", [], raw, True, "no category line after 'unsafe'")
    if len(lines) > 2:
        problem: str | None = "text after the category line"
    else:
        problem = None
    cats: list[str] = []
    unknown: list[str] = []
    for piece in lines[1].split(","):
        code = taxonomy.code_of_prompt_code(piece)
        if code is None:
            unknown.append(piece.strip())
        elif code not in cats:
            cats.append(code)
    if unknown:
        problem = f"unknown category codes {unknown}"
    return ParsedVerdict("unsafe", cats, raw, problem is not None, problem)
