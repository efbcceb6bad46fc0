"""Preference rows for the reward model and their prompt-once encoding.

A row is ``{"messages": [prompt turns], "chosen": str, "rejected": str, "edited": str
(optional)}``; the prompt is encoded in the Llama 3.1 chat format up to the open assistant
header, each response as its text and ``<|eot_id|>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from l3_align.rm.losses import RANKED
from l3_align.rm.packing import Group
from l3_core.jsonl import Exclusions, iter_jsonl
from l3_core.tokenizer import ChatFormat
from l3_core.tokenizer.chat import ROLES


@dataclass(frozen=True)
class PreferenceRow:
    messages: tuple[Mapping[str, str], ...]
    responses: Mapping[str, str]  # kind in RANKED -> text
    line: int = 0


def check_row(row: Mapping[str, Any]) -> str | None:
    """Why ``row`` is not a preference row, or None when it is."""
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return "field 'messages' must be a non-empty list of {role, content}"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return f"messages[{i}] must be {{role, content}} with string content"
        if m.get("role") not in ROLES:
            return f"messages[{i}].role {m.get('role')!r} is not one of {', '.join(ROLES)}"
    for kind in RANKED:
        value = row.get(kind)
        if value is None and kind == "edited":
            continue
        if not isinstance(value, str) or not value.strip():
            return f"field {kind!r} is missing or empty"
    if row["chosen"] == row["rejected"]:
        return "fields 'chosen' and 'rejected' are identical"
    return None


def read_preference_rows(
    path: str | os.PathLike[str], exclusions: Exclusions
) -> Iterator[PreferenceRow]:
    """The valid rows of ``path``; the others go to ``exclusions`` with their reason."""
    for line, row in iter_jsonl(path, on_bad_row=exclusions.add):
        reason = check_row(row)
        if reason is not None:
            exclusions.reject(path, line, reason)
            continue
        yield PreferenceRow(
            messages=tuple(row["messages"]),
            responses={k: row[k] for k in RANKED if row.get(k) is not None},
            line=line,
        )


def encode_response(chat: ChatFormat, text: str) -> list[int]:
    tok = chat.tokenizer
    return [*tok.encode(text.strip(), bos=False, eos=False), tok.eot_id]


def encode_preference(chat: ChatFormat, row: PreferenceRow) -> tuple[Group, torch.Tensor]:
    """The row's group (responses in RANKED order, the absent ones left out) and its
    presence mask [3]."""
    prompt = chat.encode_dialog_prompt(list(row.messages))
    kinds = [k for k in RANKED if k in row.responses]
    group = Group(prompt, [encode_response(chat, row.responses[k]) for k in kinds])
    return group, torch.tensor([k in row.responses for k in RANKED])


def scatter_scores(flat: list[torch.Tensor], present: torch.Tensor) -> torch.Tensor:
    """Per-group scores into a [rows, 3] tensor in RANKED columns (0 where absent)."""
    out = torch.zeros(present.shape, dtype=flat[0].dtype, device=flat[0].device)
    return out.masked_scatter(present.to(out.device), torch.cat(flat))
