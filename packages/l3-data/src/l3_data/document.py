"""The record that flows through a pipeline, and the stand-in for a row that could not be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """One document: its text, a stable id, the source it came from and free-form metadata.

    ``id`` is unique within a run (readers derive one from the file and row when the input has
    none), so exclusions, clusters and resumed runs can name a document exactly.
    """

    text: str
    id: str
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "source": self.source, **self.metadata}


@dataclass(slots=True)
class BadRecord:
    """An input row that is not a document (malformed JSON, no text, bad bytes, too large).

    Readers yield it instead of raising so that one bad row is excluded with its reason while
    the run goes on.
    """

    path: str
    line: int
    reason: str
    detail: str
    raw: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "raw": self.raw[:1000],
        }
