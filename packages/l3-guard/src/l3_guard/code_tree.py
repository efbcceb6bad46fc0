"""Syntax-aware Code Shield rules: tree-sitter queries over the parse tree, kept as data.

A rule of engine ``query`` is a tree-sitter query (S-expression with ``#eq?`` / ``#match?`` /
``#not-match?`` / ``#any-of?`` predicates); every match is a finding, reported at its ``@at``
capture (or the first node of the match). A rule of engine ``taint`` has a ``source`` query
(capture ``@source``: a value an attacker controls, or a string built from parts) and a
``sink`` query (capture ``@arg``: what reaches the dangerous call); it fires where a sink's
argument contains a source, directly or through variables assigned in the same snippet (the
language's ``assign`` query in the rule file's ``[tree]`` table, captures ``@lhs`` ``@rhs``);
an optional ``sanitizer`` query (capture ``@clean``) marks expressions that stop the flow.
Matching the tree, not the text, is what lets one rule cover layouts it was never written
against: arguments over several lines, keyword arguments in any order, a literal vs a built
string, and nothing inside comments or strings.

The grammars come from the per-language PyPI wheels of the ``codeshield-ts`` extra; without
them :func:`available` is False and Code Shield keeps its text rules.
"""

from __future__ import annotations

import bisect
import importlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, cached_property
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
    "php_only": ("tree_sitter_php", "language_php_only"),
    "python": ("tree_sitter_python", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "swift": ("tree_sitter_swift", "language"),
    "objective_c": ("tree_sitter_objc", "language"),
    "xml": ("tree_sitter_xml", "language_xml"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "ruby": ("tree_sitter_ruby", "language"),
}
# Languages parsed with another grammar depending on the text: PHP snippets often come
# without their ``<?php`` tag, which the full grammar would read as HTML text.
_VARIANTS = {"php": lambda text: "php" if "<?" in text else "php_only"}
VARIANTS_OF = {"php": ("php", "php_only")}
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
    grammar: str

    def char_offset(self, byte: int) -> int:
        return len(self.data[:byte].decode("utf-8", errors="replace"))


def parse(text: str, language: str) -> Parsed:
    import tree_sitter as ts

    key = _VARIANTS[language](text) if language in _VARIANTS else language
    data = text.encode("utf-8")
    return Parsed(text, data, ts.Parser(grammar(key)).parse(data).root_node, key)


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


def _name_nodes(node: Any) -> Iterator[Any]:
    """The nodes under ``node`` that name a variable."""
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type in _NAME_TYPES:
            yield n
        stack.extend(n.children)


def _contains(outer: Any, inner: Any) -> bool:
    return outer.start_byte <= inner.start_byte and inner.end_byte <= outer.end_byte


@dataclass(frozen=True)
class TaintState:
    """What is tainted in one snippet: source nodes (sorted by start), the variables they flow
    into, and the sanitised expressions that stop a flow."""

    sources: tuple[Any, ...]
    names: frozenset[str]
    clean: tuple[Any, ...] = ()

    def _dirty(self, node: Any) -> bool:
        return not any(_contains(c, node) for c in self.clean)

    @cached_property
    def _starts(self) -> list[int]:
        return [s.start_byte for s in self.sources]

    def has_source(self, node: Any) -> bool:
        """Whether an unsanitised source lies inside ``node``."""
        i = bisect.bisect_left(self._starts, node.start_byte)
        while i < len(self.sources) and self.sources[i].start_byte < node.end_byte:
            if _contains(node, self.sources[i]) and self._dirty(self.sources[i]):
                return True
            i += 1
        return False

    def used_names(self, node: Any) -> set[str]:
        """The unsanitised variable names used inside ``node``."""
        return {
            n.text.decode("utf-8", errors="replace") for n in _name_nodes(node) if self._dirty(n)
        }

    def reaches(self, arg: Any) -> bool:
        return self.has_source(arg) or not self.names.isdisjoint(self.used_names(arg))


def taint(
    parsed: Parsed, source: Any, assign: Any | None, sanitizer: Any | None = None
) -> TaintState:
    """Sources of the snippet and every variable assigned from one, through any chain of
    assignments (a worklist over names, so linear in the number of assignments)."""
    found = (n for c in matches(source, parsed) for n in c.get("source", ()))
    sources = tuple(sorted(found, key=lambda n: n.start_byte))
    clean = (
        tuple(n for c in matches(sanitizer, parsed) for n in c.get("clean", ()))
        if sanitizer is not None
        else ()
    )
    state = TaintState(sources, frozenset(), clean)
    if assign is None or not sources:
        return state
    names: set[str] = set()
    todo: list[str] = []
    assigned_from: dict[str, set[str]] = defaultdict(set)  # used name -> names assigned from it
    for c in matches(assign, parsed):
        for lhs in c.get("lhs", ()):
            name = lhs.text.decode("utf-8", errors="replace")
            for rhs in c.get("rhs", ()):
                if state.has_source(rhs):
                    todo.append(name)
                for used in state.used_names(rhs):
                    assigned_from[used].add(name)
    while todo:
        name = todo.pop()
        if name not in names:
            names.add(name)
            todo.extend(assigned_from.get(name, ()))
    return TaintState(sources, frozenset(names), clean)
