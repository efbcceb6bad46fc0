"""Blank out comments of source code and locate its string literals, keeping positions.

Rules are matched on the text with comments replaced by spaces (newlines kept, so line and
column numbers stay true), and a code rule only fires when its match starts outside a string
literal. One compiled alternation per language family scans left to right, so a ``//`` inside
a string is never taken for a comment and a quote inside a comment never opens a string.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

_C_COMMENTS = r"(?P<c>//[^\n]*|/\*.*?(?:\*/|\Z))"
_DQ = r'"(?:\\.|[^"\\\n])*(?:"|$)'
_SQ = r"'(?:\\.|[^'\\\n])*(?:'|$)"

_LEXERS: dict[str, re.Pattern[str]] = {
    "c_like": re.compile(rf"{_C_COMMENTS}|(?P<s>{_DQ}|{_SQ})", re.S | re.M),
    "csharp": re.compile(rf'{_C_COMMENTS}|(?P<s>@"(?:""|[^"])*"|{_DQ}|{_SQ})', re.S | re.M),
    "javascript": re.compile(rf"{_C_COMMENTS}|(?P<s>`(?:\\.|[^`\\])*`|{_DQ}|{_SQ})", re.S | re.M),
    "rust": re.compile(rf'{_C_COMMENTS}|(?P<s>\br(?P<h>#*)".*?"(?P=h)|{_DQ})', re.S | re.M),
    "swift": re.compile(rf'{_C_COMMENTS}|(?P<s>""".*?"""|{_DQ})', re.S | re.M),
    "python": re.compile(
        rf"(?P<c>#[^\n]*)|(?P<s>'''.*?(?:'''|\Z)|\"\"\".*?(?:\"\"\"|\Z)|{_DQ}|{_SQ})", re.S | re.M
    ),
    "ruby": re.compile(
        rf"(?P<c>^=begin\b.*?(?:^=end\b|\Z)|#(?!\{{)[^\n]*)|(?P<s>{_DQ}|{_SQ})", re.S | re.M
    ),
    "php": re.compile(
        rf"(?P<c>//[^\n]*|#(?!\[)[^\n]*|/\*.*?(?:\*/|\Z))|(?P<s>{_DQ}|{_SQ})", re.S | re.M
    ),
    # XML attribute values are where the insecure settings live; only comments are blanked.
    "xml": re.compile(r"(?P<c><!--.*?(?:-->|\Z))", re.S),
}

LEXER_OF_LANGUAGE: dict[str, str] = {
    "c": "c_like",
    "cpp": "c_like",
    "java": "c_like",
    "objective_c": "c_like",
    "csharp": "csharp",
    "javascript": "javascript",
    "rust": "rust",
    "swift": "swift",
    "python": "python",
    "ruby": "ruby",
    "php": "php",
    "xml": "xml",
}


@dataclass(frozen=True)
class LexedSource:
    """Source text with comments blanked, plus where its string literals lie."""

    text: str
    code: str
    _string_starts: list[int]
    _string_ends: list[int]
    _line_starts: list[int]

    def in_string(self, pos: int) -> bool:
        """Whether offset ``pos`` lies inside a string literal (the quotes included)."""
        i = bisect.bisect_right(self._string_starts, pos) - 1
        return i >= 0 and pos < self._string_ends[i]

    def line_col(self, pos: int) -> tuple[int, int]:
        """1-based line and column of offset ``pos``."""
        i = bisect.bisect_right(self._line_starts, pos) - 1
        return i + 1, pos - self._line_starts[i] + 1


def _blank(segment: str) -> str:
    return re.sub(r"[^\n]", " ", segment)


def lex(text: str, language: str) -> LexedSource:
    """Blank the comments of ``text`` written in ``language`` and index its strings."""
    pattern = _LEXERS[LEXER_OF_LANGUAGE[language]]
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    last = 0
    for m in pattern.finditer(text):
        if m.group("c") is not None:
            pieces.append(text[last : m.start()])
            pieces.append(_blank(m.group(0)))
            last = m.end()
        else:
            starts.append(m.start())
            ends.append(m.end())
    pieces.append(text[last:])
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return LexedSource(text, "".join(pieces), starts, ends, line_starts)
