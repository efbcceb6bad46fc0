"""Code Shield: an insecure-code detector whose rules are data.

Each language has a TOML rule file under ``l3_guard/rules/`` (id, CWE, severity, pattern,
description, and optional ``unless`` / ``unless_file`` / ``ignore_case``). Patterns run on the
source with comments blanked; a rule of scope ``code`` (the default) fires only where its match
starts outside a string literal, so neither comments nor strings trigger code rules. Rules of
scope ``any`` (secrets, key material) also look inside strings. Rules are plain Python ``re``
patterns: the fast path is one linear pass per rule, and back-references express the
structural rules (a buffer declared on the stack and later written by ``memcpy``) in the same
engine, so a scan never spawns a process.

Where the ``codeshield-ts`` extra is installed, rules of engine ``query`` and ``taint`` match
the tree-sitter parse tree instead (:mod:`l3_guard.code_tree`) and supersede the text rules of
the same id in the same file; without the extra those are skipped and the text rules stay.
Every syntax rule carries an ``insecure_example`` it must flag and a ``secure_example`` it must
not, and the test suite holds each rule to both.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from l3_core.config import read_toml
from l3_core.errors import ConfigError
from l3_guard import code_tree
from l3_guard.code_lexer import LEXER_OF_LANGUAGE, lex
from l3_guard.errors import GuardInputError, RuleFileError
from l3_guard.fail_closed import error_text, fail_closed

log = logging.getLogger(__name__)
Treatment = Literal["BLOCK", "WARN", "IGNORE"]
_SEVERITIES = ("error", "warning", "advice")
_TREATMENT_OF_SEVERITY: dict[str, Treatment] = {
    "error": "BLOCK",
    "warning": "WARN",
    "advice": "WARN",
}
_TREATMENT_RANK = {"IGNORE": 0, "WARN": 1, "BLOCK": 2}
_RULE_KEYS = {
    "id",
    "cwe",
    "severity",
    "description",
    "pattern",
    "scope",
    "unless",
    "unless_file",
    "if_file",
    "ignore_case",
    "engine",
    "source",
    "sink",
    "max_lines",
    "query",
    "insecure_example",
    "secure_example",
    "sanitizer",
}
_TEXT_ENGINES = ("regex", "flow")
_TREE_ENGINES = ("query", "taint")
# The fields each engine needs, besides id, severity and description.
_ENGINE_FIELDS = {
    "regex": ("pattern",),
    "flow": ("source", "sink"),
    "query": ("query", "insecure_example", "secure_example"),
    "taint": ("source", "sink", "insecure_example", "secure_example"),
}

LANGUAGES: tuple[str, ...] = tuple(LEXER_OF_LANGUAGE)
_ALIASES = {
    "c++": "cpp",
    "cxx": "cpp",
    "c#": "csharp",
    "cs": "csharp",
    "js": "javascript",
    "typescript": "javascript",
    "ts": "javascript",
    "node": "javascript",
    "objc": "objective_c",
    "objective-c": "objective_c",
    "objectivec": "objective_c",
    "py": "python",
    "rs": "rust",
    "rb": "ruby",
}
_SUFFIXES = {
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".java": "java",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "javascript",
    ".tsx": "javascript",
    ".php": "php",
    ".py": "python",
    ".rs": "rust",
    ".cs": "csharp",
    ".swift": "swift",
    ".m": "objective_c",
    ".mm": "objective_c",
    ".rb": "ruby",
    ".xml": "xml",
    ".config": "xml",
}
# Languages whose files also pull in another language's rules (C APIs are C++/ObjC APIs).
_INCLUDES = {"cpp": ("c",), "objective_c": ("c",)}
DEFAULT_MAX_CHARS = 4_000_000


def normalise_language(language: str) -> str:
    """Map a language name or alias (``c++``, ``js``, ``objc``) to a rule-file name."""
    if not isinstance(language, str) or not language.strip():
        raise GuardInputError(f"language must be a non-empty string, got {language!r}")
    key = language.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in LEXER_OF_LANGUAGE:
        raise GuardInputError(
            f"unknown language {language!r}; supported: {', '.join(LANGUAGES)} "
            f"(aliases: {', '.join(sorted(_ALIASES))})"
        )
    return key


def language_of_path(path: str | Path) -> str:
    """The language of a source file from its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise GuardInputError(
            f"{path}: cannot tell the language from suffix {suffix!r}; pass --language "
            f"(known suffixes: {', '.join(sorted(_SUFFIXES))})"
        )
    return _SUFFIXES[suffix]


@dataclass(frozen=True)
class Rule:
    """One detection rule, loaded from a rule file."""

    id: str
    cwe: str | None
    severity: str
    description: str
    pattern: re.Pattern[str] | None
    scope: str = "code"
    unless: re.Pattern[str] | None = None
    unless_file: re.Pattern[str] | None = None
    if_file: re.Pattern[str] | None = None
    origin: str = ""
    # engine "flow": a variable assigned by ``source`` (group ``v``) reaching ``sink`` within
    # ``max_lines`` lines; matched in two linear passes instead of one back-referencing regex.
    engine: str = "regex"
    source: re.Pattern[str] | None = None
    max_lines: int = 50
    # engines "query" / "taint": tree-sitter query texts (compiled per scanned grammar), the
    # rule file's assignment query for taint, and the rule's own test cases.
    query: str | None = None
    tree_source: str | None = None
    sanitizer: str | None = None
    assign: str | None = None
    insecure_example: str | None = None
    secure_example: str | None = None

    @property
    def is_syntax_rule(self) -> bool:
        return self.engine in _TREE_ENGINES


@dataclass(frozen=True)
class CodeIssue:
    """One finding: which rule, where, how bad, and what to do about it."""

    rule_id: str
    cwe_id: str | None
    severity: str
    line: int
    column: int
    description: str
    treatment: Treatment
    snippet: str


@dataclass
class CodeScanResult:
    """The verdict on one piece of code. ``error`` is set (and the verdict is BLOCK) when the
    scan could not be done, so a failure never reads as "secure"."""

    language: str | None
    is_insecure: bool
    treatment: Treatment
    issues: list[CodeIssue] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failed(cls, language: Any, error: BaseException | str) -> CodeScanResult:
        """The fail-closed verdict for a scan that could not be done: insecure, BLOCK."""
        return cls(
            language if isinstance(language, str) else None,
            True,
            "BLOCK",
            [],
            error=error_text(error),
        )

    @property
    def counted_rule_ids(self) -> list[str]:
        """The rules behind the verdict (IGNOREd issues are reported but do not count)."""
        return sorted({i.rule_id for i in self.issues if i.treatment != "IGNORE"})


def _compile(src: str, where: str, flags: int) -> re.Pattern[str]:
    try:
        return re.compile(src, flags)
    except re.error as e:
        raise RuleFileError(f"{where}: invalid regular expression {src!r}: {e}") from e


def load_rule_file(path: Path | Any, name: str) -> list[Rule]:
    """Parse and validate one rule file (a TOML file with ``[[rule]]`` tables)."""
    try:
        data = read_toml(path) if isinstance(path, Path) else _read_resource_toml(path)
    except (ConfigError, OSError, ValueError) as e:
        raise RuleFileError(f"rule file {name}: {e}") from e
    unknown_tables = set(data) - {"rule", "tree"}
    if unknown_tables:
        raise RuleFileError(
            f"rule file {name}: unknown tables {sorted(unknown_tables)}; allowed rule, tree"
        )
    assign = data.get("tree", {}).get("assign")
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule file {name}, rule #{i + 1} ({raw.get('id', '?')})"
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise RuleFileError(
                f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(_RULE_KEYS)}"
            )
        engine = raw.get("engine", "regex")
        if engine not in _ENGINE_FIELDS:
            raise RuleFileError(f"{where}: engine {engine!r} not in {tuple(_ENGINE_FIELDS)}")
        for key in ("id", "severity", "description", *_ENGINE_FIELDS[engine]):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise RuleFileError(f"{where}: field {key!r} must be a non-empty string")
        if raw["severity"] not in _SEVERITIES:
            raise RuleFileError(f"{where}: severity {raw['severity']!r} not in {_SEVERITIES}")
        cwe = raw.get("cwe")
        if cwe is not None and not re.fullmatch(r"CWE-\d+", cwe):
            raise RuleFileError(f"{where}: cwe {cwe!r} is not of the form CWE-<number>")
        scope = raw.get("scope", "code")
        if scope not in ("code", "any"):
            raise RuleFileError(f"{where}: scope {scope!r} not in ('code', 'any')")
        flags = re.M | (re.I if raw.get("ignore_case") else 0)
        if engine == "taint" and not assign:
            log.debug("%s: taint rule without a [tree] assign query: direct flows only", where)
        source = _compile(raw["source"], where, flags) if engine == "flow" else None
        if source is not None and "v" not in source.groupindex:
            raise RuleFileError(f"{where}: a flow rule's source needs a named group (?P<v>...)")
        rules.append(
            Rule(
                id=raw["id"],
                cwe=cwe,
                severity=raw["severity"],
                description=raw["description"].strip(),
                pattern=_text_pattern(raw, engine, where, flags),
                scope=scope,
                unless=_compile(raw["unless"], where, flags) if raw.get("unless") else None,
                unless_file=_compile(raw["unless_file"], where, flags)
                if raw.get("unless_file")
                else None,
                if_file=_compile(raw["if_file"], where, flags) if raw.get("if_file") else None,
                origin=name,
                engine=engine,
                source=source,
                max_lines=int(raw.get("max_lines", 50)),
                query=raw.get("query") if engine == "query" else raw.get("sink"),
                tree_source=raw["source"] if engine == "taint" else None,
                sanitizer=raw.get("sanitizer") if engine == "taint" else None,
                assign=assign if engine == "taint" else None,
                insecure_example=raw.get("insecure_example"),
                secure_example=raw.get("secure_example"),
            )
        )
    return rules


def _text_pattern(
    raw: dict[str, Any], engine: str, where: str, flags: int
) -> re.Pattern[str] | None:
    key = {"regex": "pattern", "flow": "sink"}.get(engine)
    return _compile(raw[key], where, flags) if key else None


def _verdict(language: str | None, issues: list[CodeIssue]) -> CodeScanResult:
    """The result of a scan: issues once each, in order; the worst counted treatment."""
    # One rule id may span several [[rule]] tables (alternative preconditions).
    unique = sorted(
        {(i.rule_id, i.line, i.column): i for i in issues}.values(),
        key=lambda i: (i.line, i.column, i.rule_id),
    )
    counted = [i for i in unique if i.treatment != "IGNORE"]
    worst: Treatment = max(
        (i.treatment for i in counted), key=_TREATMENT_RANK.__getitem__, default="IGNORE"
    )
    return CodeScanResult(language, bool(counted), worst, unique)


def _reaches(
    assigned: list[tuple[int, str]], sink: re.Match[str], src: Any, max_lines: int
) -> bool:
    """Whether a variable assigned up to ``max_lines`` lines before the sink appears in it."""
    line = src.line_col(sink.start())[0]
    words = set(_WORD.findall(sink.group(0)))
    i = bisect.bisect_right(assigned, (line, "\uffff"))
    while i > 0 and line - assigned[i - 1][0] <= max_lines:
        i -= 1
        if assigned[i][1] in words:
            return True
    return False


_WORD = re.compile(r"\$?\w+")


def _flow_sources(rule: Rule, src: Any) -> list[tuple[int, str]]:
    """(line, variable) of every tainted assignment, in order."""
    assert rule.source is not None
    return [
        (src.line_col(m.start())[0], m.group("v"))
        for m in rule.source.finditer(src.code)
        if not src.in_string(m.start())
    ]


def _text_findings(rule: Rule, src: Any) -> Iterable[tuple[int, int]]:
    """(start, end) offsets of a regex or flow rule's matches in code, outside strings for
    rules of scope ``code``."""
    assert rule.pattern is not None
    assigned = _flow_sources(rule, src) if rule.engine == "flow" else None
    if assigned is not None and not assigned:
        return
    for m in rule.pattern.finditer(src.code):
        at = "at" in rule.pattern.groupindex and m.start("at") >= 0
        pos = m.start("at") if at else m.start()
        if rule.scope == "code" and src.in_string(pos):
            continue
        if assigned is not None and not _reaches(assigned, m, src, rule.max_lines):
            continue
        yield pos, m.end()


def _tree_findings(rule: Rule, parsed: code_tree.Parsed) -> Iterable[tuple[int, int]]:
    """(start, end) offsets of a query match, or of a sink whose argument a source reaches."""
    assert rule.query is not None
    where = f"rule file {rule.origin}, rule {rule.id}"
    sink = code_tree.compile_query(parsed.grammar, rule.query, where)
    state = None
    if rule.engine == "taint":
        assert rule.tree_source is not None
        source = code_tree.compile_query(parsed.grammar, rule.tree_source, where)
        assign = (
            code_tree.compile_query(parsed.grammar, rule.assign, where) if rule.assign else None
        )
        clean = (
            code_tree.compile_query(parsed.grammar, rule.sanitizer, where)
            if rule.sanitizer
            else None
        )
        state = code_tree.taint(parsed, source, assign, clean)
        if not state.sources:
            return
    for captures in code_tree.matches(sink, parsed):
        if state is not None and not any(state.reaches(a) for a in captures.get("arg", ())):
            continue
        node = code_tree.report_node(captures)
        yield parsed.char_offset(node.start_byte), parsed.char_offset(node.end_byte)


def _read_resource_toml(traversable: Any) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(traversable.read_text(encoding="utf-8"))


def load_rules(rules_dir: str | Path | None = None) -> dict[str, list[Rule]]:
    """Rules per language: each language's own file, its includes, and ``language_agnostic``."""
    if rules_dir is None:
        root: Any = resources.files("l3_guard") / "rules"
    else:
        root = Path(rules_dir)
        if not root.is_dir():
            raise RuleFileError(f"rules directory {root} does not exist")
    per_file: dict[str, list[Rule]] = {}
    for name in (*LANGUAGES, "language_agnostic"):
        entry = root / f"{name}.toml"
        if entry.is_file():
            per_file[name] = load_rule_file(entry, f"{name}.toml")
    rules: dict[str, list[Rule]] = {}
    for lang in LANGUAGES:
        own = list(per_file.get(lang, []))
        for inc in _INCLUDES.get(lang, ()):
            own += per_file.get(inc, [])
        rules[lang] = _for_engine(lang, own + per_file.get("language_agnostic", []))
    return rules


def _for_engine(language: str, rules: list[Rule]) -> list[Rule]:
    """The rules that run for ``language``: with its grammar, syntax rules replace the text
    rules of the same file and id (and are compiled now, so a bad query fails at load);
    without it, the text rules stay and syntax rules are left out."""
    if not code_tree.available(language):
        return [r for r in rules if not r.is_syntax_rule]
    superseded = {(r.origin, r.id) for r in rules if r.is_syntax_rule}
    kept = [r for r in rules if r.is_syntax_rule or (r.origin, r.id) not in superseded]
    for r in kept:
        where = f"rule file {r.origin}, rule {r.id}"
        for text in (r.query, r.tree_source, r.sanitizer, r.assign):
            for grammar in code_tree.VARIANTS_OF.get(language, (language,)):
                if r.is_syntax_rule and text:
                    code_tree.compile_query(grammar, text, where)
    return kept


class CodeShield:
    """Scan code for insecure patterns. Immutable after construction, so safe across threads."""

    def __init__(
        self,
        rules_dir: str | Path | None = None,
        treatment_overrides: Mapping[str, Treatment] | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        self._rules = load_rules(rules_dir)
        self._overrides = dict(treatment_overrides or {})
        for rid, t in self._overrides.items():
            if t not in _TREATMENT_RANK:
                raise ConfigError(
                    f"treatment override for {rid!r}: {t!r} not in {list(_TREATMENT_RANK)}"
                )
        self.max_chars = max_chars

    @property
    def languages(self) -> tuple[str, ...]:
        return LANGUAGES

    def rules(self, language: str) -> list[Rule]:
        return list(self._rules[normalise_language(language)])

    def _text(self, code: str | bytes) -> str:
        if isinstance(code, bytes):
            if b"\x00" in code:
                raise GuardInputError("code looks binary (contains NUL bytes); refusing to scan")
            try:
                code = code.decode("utf-8")
            except UnicodeDecodeError as e:
                raise GuardInputError(f"code is not valid UTF-8: {e}") from e
        if not isinstance(code, str):
            raise GuardInputError(f"code must be str or bytes, got {type(code).__name__}")
        if "\x00" in code:
            raise GuardInputError("code looks binary (contains NUL characters); refusing to scan")
        if len(code) > self.max_chars:
            raise GuardInputError(
                f"code has {len(code):,} characters, over the limit of {self.max_chars:,}; "
                "split it or raise max_chars"
            )
        return code

    def scan(self, code: str | bytes, language: str) -> CodeScanResult:
        """Scan one piece of code; raises :class:`GuardInputError` on unusable input."""
        lang = normalise_language(language)
        text = self._text(code)
        src = lex(text, lang)
        tree: list[code_tree.Parsed] = []  # parsed on the first syntax rule, then reused
        issues: list[CodeIssue] = []
        for rule in self._rules[lang]:
            if rule.unless_file is not None and rule.unless_file.search(src.code):
                continue
            if rule.if_file is not None and not rule.if_file.search(src.code):
                continue
            if rule.is_syntax_rule and not tree:
                tree.append(code_tree.parse(text, lang))
            found = (
                _tree_findings(rule, tree[0]) if rule.is_syntax_rule else _text_findings(rule, src)
            )
            for pos, end in found:
                if rule.unless is not None:
                    a = src.code.rfind("\n", 0, pos) + 1
                    b = src.code.find("\n", end)
                    if rule.unless.search(src.code[a : b if b >= 0 else len(src.code)]):
                        continue
                line, col = src.line_col(pos)
                treatment = self._overrides.get(rule.id, _TREATMENT_OF_SEVERITY[rule.severity])
                issues.append(
                    CodeIssue(
                        rule.id,
                        rule.cwe,
                        rule.severity,
                        line,
                        col,
                        rule.description,
                        treatment,
                        text[pos:end][:120],
                    )
                )
        return _verdict(lang, issues)

    def scan_every_language(self, code: str | bytes) -> CodeScanResult:
        """Scan code whose language is not known as each language in turn (each with its own
        lexer), reporting every issue found once; the result's ``language`` is None."""
        text = self._text(code)
        issues = [i for lang in LANGUAGES for i in self.scan(text, lang).issues]
        return _verdict(None, issues)

    def scan_safe(self, code: Any, language: Any) -> CodeScanResult:
        """Like :meth:`scan` but never raises: a failure is a BLOCK result carrying the error."""
        return fail_closed(
            "code scan",
            lambda: self.scan(code, language),
            lambda e: CodeScanResult.failed(language, e),
        )

    def scan_batch(self, items: Iterable[tuple[Any, Any]]) -> list[CodeScanResult]:
        """Scan ``(code, language)`` pairs; a bad item yields an error result, never a crash."""
        return [self.scan_safe(code, lang) for code, lang in items]
