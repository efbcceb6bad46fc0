"""The Guard: Prompt Guard, moderation and Code Shield composed into one decision.

``check_input`` runs Prompt Guard and prompt moderation on what a user (or a tool) sends;
``check_output`` runs response moderation and Code Shield on every code block of the answer
(fenced with backticks or tildes, or indented). Decisions are ALLOW / WARN / BLOCK with the reasons that led there. The Guard fails
closed: a check that raises turns into ``on_error`` (BLOCK by default, or WARN to escalate to
a human), with the error kept in the reason; it is never read as "safe".

A Guard is safe to share between threads: the checks are immutable after loading, default
checks are loaded once under a lock, and the LLM backend serialises its forward passes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from l3_core.errors import ConfigError
from l3_guard.code_shield import CodeScanResult, CodeShield, normalise_language
from l3_guard.errors import GuardInputError
from l3_guard.fail_closed import error_text, fail_closed
from l3_guard.llama_guard_format import Turn, as_turns
from l3_guard.moderation import EmbeddedModerator, ModerationResult, Moderator
from l3_guard.prompt_guard import PromptGuard, PromptGuardResult

Decision = Literal["ALLOW", "WARN", "BLOCK"]
_RANK = {"ALLOW": 0, "WARN": 1, "BLOCK": 2}
# A fence of three or more backticks or tildes, closed by the same fence (or the end of the
# text: an unclosed block is still code). Fences are found anywhere, not only at a line
# start, so code in a list item or after text on the same line is not missed.
_FENCE = re.compile(
    r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<tag>[\w+#.\-]*)[^\n]*\n(?P<code>.*?)(?:(?P=fence)|\Z)", re.S
)
_INDENT = re.compile(r"^(?: {4}|\t)")
_LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])(?:[ \t]|$)")


@dataclass(frozen=True)
class GuardPolicy:
    """What each finding turns into. ``on_error`` may be BLOCK or WARN (escalate), never ALLOW."""

    injection: Decision = "BLOCK"
    jailbreak: Decision = "BLOCK"
    unsafe_prompt: Decision = "BLOCK"
    unsafe_response: Decision = "BLOCK"
    insecure_code_block: Decision = "BLOCK"
    insecure_code_warn: Decision = "WARN"
    unscanned_code: Decision = "WARN"
    on_error: Decision = "BLOCK"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value not in _RANK:
                raise ConfigError(f"GuardPolicy.{name} = {value!r}; expected ALLOW, WARN or BLOCK")
        if self.on_error == "ALLOW":
            raise ConfigError("GuardPolicy.on_error cannot be ALLOW: the guard fails closed")


@dataclass
class Reason:
    """Why a check contributed to the decision."""

    check: str
    decision: Decision
    detail: str
    error: str | None = None


@dataclass
class GuardDecision:
    decision: Decision
    reasons: list[Reason] = field(default_factory=list)
    prompt_guard: PromptGuardResult | None = None
    moderation: ModerationResult | None = None
    code: list[CodeScanResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load_error(check: str, load: Callable[[], object]) -> str | None:
    """None when ``load()`` works, else the error it raised, as a verdict keeps it."""

    def loaded() -> str | None:
        load()
        return None

    return fail_closed(check, loaded, error_text)


def extract_code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language tag, code)`` for every code block of a markdown text, in order: fenced with
    backticks or tildes, or indented by four spaces (those have no tag)."""
    blocks = [
        (text.count("\n", 0, m.start()), m.group("tag").strip(), m.group("code"))
        for m in _FENCE.finditer(text)
    ]
    # Fenced regions become blank lines (same line count), so their lines are not read twice.
    rest = _FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    blocks += _indented_blocks(rest)
    return [(tag, code) for _pos, tag, code in sorted(blocks, key=lambda b: b[0])]


def _indented_blocks(text: str) -> list[tuple[int, str, str]]:
    """CommonMark indented code blocks: indented lines after a blank line, outside lists
    (an indented paragraph after a list item continues the item). Returns (line, "", code)."""
    lines = text.split("\n")
    out: list[tuple[int, str, str]] = []
    prev_blank, in_list, i = True, False, 0
    while i < len(lines):
        line = lines[i]
        if line.strip() and _INDENT.match(line) and prev_blank and not in_list:
            j = i
            while j < len(lines) and (not lines[j].strip() or _INDENT.match(lines[j])):
                j += 1
            body = [_INDENT.sub("", ln, count=1) for ln in lines[i:j]]
            while not body[-1].strip():
                body.pop()
            out.append((i, "", "\n".join(body) + "\n"))
            i, prev_blank = j, True
            continue
        if line.strip() and not _INDENT.match(line):
            in_list = bool(_LIST_ITEM.match(line)) or (in_list and not prev_blank)
        prev_blank = not line.strip()
        i += 1
    return out


class Guard:
    """Compose the three checks. Pass your own checks or let the shipped defaults load lazily."""

    def __init__(
        self,
        *,
        moderator: Moderator | None = None,
        prompt_guard: PromptGuard | None = None,
        code_shield: CodeShield | None = None,
        policy: GuardPolicy | None = None,
    ) -> None:
        self._moderator = moderator
        self._prompt_guard = prompt_guard
        self._code_shield = code_shield
        self.policy = policy or GuardPolicy()
        self._lock = threading.Lock()

    # Lazy, once-only loading of the defaults; after that every read is of an immutable object.
    def _get(self, attr: str, factory: Callable[[], Any]) -> Any:
        obj = getattr(self, attr)
        if obj is None:
            with self._lock:
                obj = getattr(self, attr)
                if obj is None:
                    obj = factory()
                    setattr(self, attr, obj)
        return obj

    @property
    def moderator(self) -> Moderator:
        return self._get("_moderator", EmbeddedModerator)

    @property
    def moderator_name(self) -> str:
        """The moderator's backend name, without loading it (loading may be what failed)."""
        return self._moderator.name if self._moderator is not None else EmbeddedModerator.name

    @property
    def prompt_guard(self) -> PromptGuard:
        return self._get("_prompt_guard", PromptGuard)

    @property
    def code_shield(self) -> CodeShield:
        return self._get("_code_shield", CodeShield)

    # -- the checks ------------------------------------------------------------------------

    def _run(self, check: str, fn: Callable[[], Any], reasons: list[Reason]) -> Any:
        """``fn()``, or None with an ``on_error`` reason when it raises (loading included)."""

        def failed(e: Exception) -> None:
            reasons.append(Reason(check, self.policy.on_error, "check failed", error_text(e)))

        return fail_closed(check, fn, failed)

    def load_errors(self) -> dict[str, str]:
        """Load every check now; the error of each that cannot load (empty: all usable)."""
        loaders: dict[str, Callable[[], object]] = {
            "moderation": lambda: self.moderator,
            "prompt_guard": lambda: self.prompt_guard,
            "code_shield": lambda: self.code_shield,
        }
        errors = {check: _load_error(check, load) for check, load in loaders.items()}
        return {check: e for check, e in errors.items() if e is not None}

    def check_input(self, conversation: str | Sequence[Turn | dict]) -> GuardDecision:
        """Prompt Guard and prompt moderation on the last user turn (with its context)."""
        reasons: list[Reason] = []
        turns = self._run("input", lambda: as_turns(conversation, "user"), reasons)
        if turns is None:
            return self._decide(reasons)
        last_user = next((t for t in reversed(turns) if t.role == "user"), None)
        if last_user is None:
            reasons.append(
                Reason(
                    "input",
                    self.policy.on_error,
                    "no user turn to check",
                    "GuardInputError: no user turn",
                )
            )
            return self._decide(reasons)
        pg = self._run(
            "prompt_guard", lambda: self.prompt_guard.classify(last_user.content), reasons
        )
        if pg is not None and pg.label != "BENIGN":
            action = self.policy.injection if pg.label == "INJECTION" else self.policy.jailbreak
            p = pg.scores[pg.label] if pg.scores else float("nan")
            reasons.append(Reason("prompt_guard", action, f"{pg.label} (p={p:.2f})"))
        upto = turns[: max(i for i, t in enumerate(turns) if t is last_user) + 1]
        mod = self._run("moderation", lambda: self.moderator.moderate(upto, "user"), reasons)
        self._moderation_reason(mod, self.policy.unsafe_prompt, reasons)
        return self._decide(reasons, prompt_guard=pg, moderation=mod)

    def check_output(
        self, conversation: Sequence[Turn | dict], response: str | None = None
    ) -> GuardDecision:
        """Response moderation on the last agent turn (or ``response`` appended to the
        conversation) and Code Shield on each fenced code block in it."""
        reasons: list[Reason] = []

        def _turns() -> list[Turn]:
            turns = as_turns(conversation, "agent")
            if response is not None:
                turns = [*turns, *as_turns(response, "agent")]
            if turns[-1].role != "agent":
                raise GuardInputError("the conversation does not end with an agent turn")
            return turns

        turns = self._run("output", _turns, reasons)
        if turns is None:
            return self._decide(reasons)
        mod = self._run("moderation", lambda: self.moderator.moderate(turns, "agent"), reasons)
        self._moderation_reason(mod, self.policy.unsafe_response, reasons)
        code_results = []
        for tag, code in extract_code_blocks(turns[-1].content):
            res = self._scan_block(tag, code, reasons)
            if res is not None:
                code_results.append(res)
        return self._decide(reasons, moderation=mod, code=code_results)

    def _scan_block(self, tag: str, code: str, reasons: list[Reason]) -> CodeScanResult | None:
        """Code Shield on one block of a response. A block without a tag is scanned as every
        language and still escalated (``unscanned_code``): a language Code Shield has no rules
        for would pass unchecked. A tag Code Shield does not know is not scanned at all."""
        if not tag:
            reasons.append(
                Reason(
                    "code_shield",
                    self.policy.unscanned_code,
                    "code block without a language tag, scanned as every language",
                )
            )
            res = self._run(
                "code_shield", lambda: self.code_shield.scan_every_language(code), reasons
            )
            return self._code_reason(res, "any language", reasons)
        try:
            lang = normalise_language(tag)
        except GuardInputError:
            reasons.append(
                Reason(
                    "code_shield",
                    self.policy.unscanned_code,
                    f"code block with unknown language {tag!r} was not scanned",
                )
            )
            return None
        res = self._run("code_shield", lambda: self.code_shield.scan(code, lang), reasons)
        return self._code_reason(res, lang, reasons)

    def check(self, conversation: str | Sequence[Turn | dict]) -> GuardDecision:
        """Check the last turn: as input when the user spoke last, as output otherwise."""
        reasons: list[Reason] = []
        turns = self._run("input", lambda: as_turns(conversation, "user"), reasons)
        if turns is None:
            return self._decide(reasons)
        return self.check_input(turns) if turns[-1].role == "user" else self.check_output(turns)

    def check_batch(
        self, conversations: Sequence[Any], max_workers: int = 4
    ) -> list[GuardDecision]:
        """:meth:`check` over many conversations on a thread pool, results in input order."""
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            return list(pool.map(self.check, conversations))

    def scan_code(self, code: str | bytes, language: str) -> GuardDecision:
        """Code Shield alone, as a decision."""
        reasons: list[Reason] = []
        res = self._run("code_shield", lambda: self.code_shield.scan(code, language), reasons)
        res = self._code_reason(res, res.language if res is not None else str(language), reasons)
        return self._decide(reasons, code=[res] if res is not None else [])

    # -- helpers ---------------------------------------------------------------------------

    def _code_reason(
        self, res: CodeScanResult | None, where: str, reasons: list[Reason]
    ) -> CodeScanResult | None:
        """The reason an insecure scan result adds (by its treatment); returns ``res``."""
        if res is not None and res.is_insecure:
            action = (
                self.policy.insecure_code_block
                if res.treatment == "BLOCK"
                else self.policy.insecure_code_warn
            )
            reasons.append(
                Reason("code_shield", action, f"{where}: {', '.join(res.counted_rule_ids)}")
            )
        return res

    def _moderation_reason(
        self, mod: ModerationResult | None, action: Decision, reasons: list[Reason]
    ) -> None:
        if mod is None:
            return
        if mod.error is not None:
            reasons.append(Reason("moderation", self.policy.on_error, "check failed", mod.error))
        elif mod.label == "unsafe":
            detail = f"unsafe {','.join(mod.categories) or '(no category)'} (score {mod.score:.2f})"
            if mod.malformed:
                detail += f"; malformed model output {mod.raw!r:.80}"
            reasons.append(Reason("moderation", action, detail))

    @staticmethod
    def _decide(reasons: list[Reason], **parts: Any) -> GuardDecision:
        decision: Decision = "ALLOW"
        for r in reasons:
            if _RANK[r.decision] > _RANK[decision]:
                decision = r.decision
        return GuardDecision(decision, reasons, **parts)
