"""Syntax-aware Code Shield rules: tree-sitter queries over the parse tree, kept as data.

A rule of engine ``query`` is a tree-sitter query (S-expression with ``#eq?`` / ``#match?`` /
``#not-match?`` / ``#any-of?`` predicates); every match is a finding, reported at its ``@at``
capture (or the first node of the match). A rule of engine ``taint`` has a ``source`` query
(capture ``@source``: a value an attacker controls, or a string built from parts) and a
``sink`` query (capture ``@arg``: what reaches the dangerous call); it fires where a sink's
argument contains a source, directly or through variables assigned in the same snippet (the
language's ``assign`` query in the rule file's ``[tree]`` table, captures ``@lhs`` ``@rhs``).
Matching the tree, not the text, is what lets one rule cover layouts it was never written
against: arguments over several lines, keyword arguments in any order, a literal vs a built
string, and nothing inside comments or strings.

The grammars come from the per-language PyPI wheels of the ``codeshield-ts`` extra; without
them :func:`available` is False and Code Shield keeps its text rules.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from l3_guard.errors import RuleFileError

log = logging.getLogger(__name__)

# language -> (module of its PyPI wheel, function returning the grammar pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
    "java": ("tree_sitter_java", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "php": ("tree_sitter_php", "language_php"),
    "python": ("tree_sitter_python", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "objective_c": ("tree_sitter_objc", "language"),
    "xml": ("tree_sitter_xml", "language_xml"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}
# Node types that name a variable, across the grammars above.
_NAME_TYPES = frozenset({"identifier", "variable_name", "simple_identifier", "name"})


@cache
def grammar(language: str) -> Any | None:
    """The tree-sitter ``Language`` of ``language``, or None when its wheel is missing."""
    if language not in GRAMMARS:
        return None
    try:
        import tree_sitter as ts

        module, func = GRAMMARS[language]
        return ts.Language(getattr(importlib.import_module(module), func)())
    except (ImportError, AttributeError, ValueError) as e:
        log.info("no tree-sitter grammar for %s (%s); text rules only", language, e)
        return None


def available(language: str) -> bool:
    """Whether syntax rules can run for ``language`` here."""
    return grammar(language) is not None


@cache
def _query(language: str, source: str) -> Any:
    import tree_sitter as ts

    return ts.Query(grammar(language), source)


def compile_query(language: str, source: str, where: str) -> Any:
    """The compiled query (cached per grammar); a bad one names the rule and the reason."""
    import tree_sitter as ts

    try:
        return _query(language, source)
    except (ts.QueryError, ValueError) as e:
        raise RuleFileError(f"{where}: invalid tree-sitter query for {language}: {e}") from e


@dataclass(frozen=True)
class Parsed:
    """One snippet's tree, with the byte offsets needed to report character positions."""

    text: str
    data: bytes
    root: Any

    def char_offset(self, byte: int) -> int:
        return len(self.data[:byte].decode("utf-8", errors="replace"))


def parse(text: str, language: str) -> Parsed:
    import tree_sitter as ts

    data = text.encode("utf-8")
    return Parsed(text, data, ts.Parser(grammar(language)).parse(data).root_node)


def matches(query: Any, parsed: Parsed) -> Iterator[dict[str, list[Any]]]:
    """The capture dicts of every match of ``query`` in the tree (predicates applied)."""
    import tree_sitter as ts

    for _, captures in ts.QueryCursor(query).matches(parsed.root):
        yield captures


def report_node(captures: dict[str, list[Any]]) -> Any:
    """Where a match is reported: its ``@at`` capture, else the earliest captured node."""
    if captures.get("at"):
        return captures["at"][0]
    return min((n for nodes in captures.values() for n in nodes), key=lambda n: n.start_byte)


def _names(node: Any) -> Iterator[str]:
    """The variable names used anywhere under ``node``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type in _NAME_TYPES:
            yield n.text.decode("utf-8", errors="replace")
        stack.extend(n.children)


def _contains(outer: Any, inner: Any) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


@dataclass(frozen=True)
class TaintState:
    """What is tainted in one snippet: source nodes, and the variables they flow into."""

    sources: tuple[Any, ...]
    names: frozenset[str]

    def reaches(self, arg: Any) -> bool:
        if any(_contains(arg, s) for s in self.sources):
            return True
        return bool(self.names) and any(name in self.names for name in _names(arg))


def taint(parsed: Parsed, source: Any, assign: Any | None) -> TaintState:
    """Sources of the snippet and, to a fixed point, every variable assigned from one."""
    sources = tuple(n for c in matches(source, parsed) for n in c.get("source", ()))
    names: set[str] = set()
    if assign is not None and sources:
        pairs = [
            (lhs, rhs)
            for c in matches(assign, parsed)
            for lhs in c.get("lhs", ())
            for rhs in c.get("rhs", ())
        ]
        changed = True
        while changed:  # one pass per hop of the chain; bounded by the number of assignments
            changed = False
            state = TaintState(sources, frozenset(names))
            for lhs, rhs in pairs:
                name = lhs.text.decode("utf-8", errors="replace")
                if name not in names and state.reaches(rhs):
                    names.add(name)
                    changed = True
    return TaintState(sources, frozenset(names))
