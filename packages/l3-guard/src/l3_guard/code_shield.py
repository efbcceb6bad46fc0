"""Code Shield: an insecure-code detector whose rules are data.

Each language has a TOML rule file under ``l3_guard/rules/`` (id, CWE, severity, pattern,
description, and optional ``unless`` / ``unless_file`` / ``ignore_case``). Patterns run on the
source with comments blanked; a rule of scope ``code`` (the default) fires only where its match
starts outside a string literal, so neither comments nor strings trigger code rules. Rules of
scope ``any`` (secrets, key material) also look inside strings. Rules are plain Python ``re``
patterns: the fast path is one linear pass per rule, and back-references express the
structural rules (a buffer declared on the stack and later written by ``memcpy``) in the same
engine, so a scan never spawns a process.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from l3_core.config import read_toml
from l3_core.errors import ConfigError
from l3_guard.code_lexer import LEXER_OF_LANGUAGE, lex
from l3_guard.errors import GuardInputError, RuleFileError
from l3_guard.fail_closed import error_text, fail_closed

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
    pattern: re.Pattern[str]
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
    rules: list[Rule] = []
    for i, raw in enumerate(data.get("rule", [])):
        where = f"rule file {name}, rule #{i + 1} ({raw.get('id', '?')})"
        unknown = set(raw) - _RULE_KEYS
        if unknown:
            raise RuleFileError(
                f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(_RULE_KEYS)}"
            )
        engine = raw.get("engine", "regex")
        if engine not in ("regex", "flow"):
            raise RuleFileError(f"{where}: engine {engine!r} not in ('regex', 'flow')")
        needed = ("id", "severity", "description") + (
            ("pattern",) if engine == "regex" else ("source", "sink")
        )
        for key in needed:
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
        source = _compile(raw["source"], where, flags) if engine == "flow" else None
        if source is not None and "v" not in source.groupindex:
            raise RuleFileError(f"{where}: a flow rule's source needs a named group (?P<v>...)")
        rules.append(
            Rule(
                id=raw["id"],
                cwe=cwe,
                severity=raw["severity"],
                description=raw["description"].strip(),
                pattern=_compile(raw["sink"] if engine == "flow" else raw["pattern"], where, flags),
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
            )
        )
    return rules


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
        rules[lang] = own + per_file.get("language_agnostic", [])
    return rules


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
        issues: list[CodeIssue] = []
        for rule in self._rules[lang]:
            if rule.unless_file is not None and rule.unless_file.search(src.code):
                continue
            if rule.if_file is not None and not rule.if_file.search(src.code):
                continue
            assigned = self._flow_sources(rule, src) if rule.engine == "flow" else None
            if assigned is not None and not assigned:
                continue
            for m in rule.pattern.finditer(src.code):
                pos = (
                    m.start("at")
                    if "at" in rule.pattern.groupindex and m.start("at") >= 0
                    else m.start()
                )
                if rule.scope == "code" and src.in_string(pos):
                    continue
                if assigned is not None and not _reaches(assigned, m, src, rule.max_lines):
                    continue
                if rule.unless is not None:
                    a = src.code.rfind("\n", 0, m.start()) + 1
                    b = src.code.find("\n", m.end())
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
                        m.group(0)[:120],
                    )
                )
        return _verdict(lang, issues)

    def scan_every_language(self, code: str | bytes) -> CodeScanResult:
        """Scan code whose language is not known as each language in turn (each with its own
        lexer), reporting every issue found once; the result's ``language`` is None."""
        text = self._text(code)
        issues = [i for lang in LANGUAGES for i in self.scan(text, lang).issues]
        return _verdict(None, issues)

    @staticmethod
    def _flow_sources(rule: Rule, src: Any) -> list[tuple[int, str]]:
        """(line, variable) of every tainted assignment, in order."""
        assert rule.source is not None
        return [
            (src.line_col(m.start())[0], m.group("v"))
            for m in rule.source.finditer(src.code)
            if not src.in_string(m.start())
        ]

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
