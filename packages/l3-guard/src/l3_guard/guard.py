"""The Guard: Prompt Guard, moderation and Code Shield composed into one decision.

``check_input`` runs Prompt Guard and prompt moderation on what a user (or a tool) sends;
``check_output`` runs response moderation and Code Shield on every fenced code block of the
answer. Decisions are ALLOW / WARN / BLOCK with the reasons that led there. The Guard fails
closed: a check that raises turns into ``on_error`` (BLOCK by default, or WARN to escalate to
a human), with the error kept in the reason; it is never read as "safe".

A Guard is safe to share between threads: the checks are immutable after loading, default
checks are loaded once under a lock, and the LLM backend serialises its forward passes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from l3_core.errors import ConfigError
from l3_guard.code_shield import CodeScanResult, CodeShield, normalise_language
from l3_guard.errors import GuardInputError
from l3_guard.llama_guard_format import Turn, as_turns
from l3_guard.moderation import EmbeddedModerator, ModerationResult, Moderator
from l3_guard.prompt_guard import PromptGuard, PromptGuardResult

log = logging.getLogger(__name__)
Decision = Literal["ALLOW", "WARN", "BLOCK"]
_RANK = {"ALLOW": 0, "WARN": 1, "BLOCK": 2}
_FENCE = re.compile(r"```[ \t]*([\w+#.\-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


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


def extract_code_blocks(text: str) -> list[tuple[str, str]]:
    """``(language tag, code)`` for every fenced block of a markdown text."""
    return [(m.group(1).strip(), m.group(2)) for m in _FENCE.finditer(text)]


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
    def prompt_guard(self) -> PromptGuard:
        return self._get("_prompt_guard", PromptGuard)

    @property
    def code_shield(self) -> CodeShield:
        return self._get("_code_shield", CodeShield)

    # -- the checks ------------------------------------------------------------------------

    def _run(self, check: str, fn: Callable[[], Any], reasons: list[Reason]) -> Any:
        try:
            return fn()
        except Exception as e:  # fail closed: a check that cannot run blocks (or escalates)
            log.warning("%s failed: %s", check, e)
            reasons.append(Reason(check, self.policy.on_error, "check failed", f"{type(e).__name__}: {e}"))
            return None

    def check_input(self, conversation: str | Sequence[Turn | dict]) -> GuardDecision:
        """Prompt Guard and prompt moderation on the last user turn (with its context)."""
        reasons: list[Reason] = []
        turns = self._run("input", lambda: as_turns(conversation, "user"), reasons)
        if turns is None:
            return self._decide(reasons)
        last_user = next((t for t in reversed(turns) if t.role == "user"), None)
        if last_user is None:
            reasons.append(Reason("input", self.policy.on_error, "no user turn to check",
                                  "GuardInputError: no user turn"))
            return self._decide(reasons)
        pg = self._run("prompt_guard", lambda: self.prompt_guard.classify(last_user.content), reasons)
        if pg is not None and pg.label != "BENIGN":
            action = self.policy.injection if pg.label == "INJECTION" else self.policy.jailbreak
            p = pg.scores[pg.label] if pg.scores else float("nan")
            reasons.append(Reason("prompt_guard", action, f"{pg.label} (p={p:.2f})"))
        upto = turns[: max(i for i, t in enumerate(turns) if t is last_user) + 1]
        mod = self._run("moderation", lambda: self.moderator.moderate(upto, "user"), reasons)
        self._moderation_reason(mod, self.policy.unsafe_prompt, reasons)
        return self._decide(reasons, prompt_guard=pg, moderation=mod)

    def check_output(self, conversation: Sequence[Turn | dict], response: str | None = None) -> GuardDecision:
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
            try:
                lang = normalise_language(tag) if tag else None
            except GuardInputError:
                lang = None
            if lang is None:
                reasons.append(Reason("code_shield", self.policy.unscanned_code,
                                      f"code block with unknown language {tag!r} was not scanned"))
                continue
            res = self._run("code_shield", lambda c=code, lg=lang: self.code_shield.scan(c, lg), reasons)
            if res is None:
                continue
            code_results.append(res)
            if res.is_insecure:
                action = self.policy.insecure_code_block if res.treatment == "BLOCK" else self.policy.insecure_code_warn
                ids = sorted({i.rule_id for i in res.issues if i.treatment != "IGNORE"})
                reasons.append(Reason("code_shield", action, f"{lang}: {', '.join(ids)}"))
        return self._decide(reasons, moderation=mod, code=code_results)

    def check(self, conversation: str | Sequence[Turn | dict]) -> GuardDecision:
        """Check the last turn: as input when the user spoke last, as output otherwise."""
        try:
            turns = as_turns(conversation, "user")
        except GuardInputError as e:
            return self._decide([Reason("input", self.policy.on_error, "invalid conversation", f"GuardInputError: {e}")])
        return self.check_input(turns) if turns[-1].role == "user" else self.check_output(turns)

    def check_batch(self, conversations: Sequence[Any], max_workers: int = 4) -> list[GuardDecision]:
        """:meth:`check` over many conversations on a thread pool, results in input order."""
        with ThreadPoolExecutor(max_workers=max_workers) as pool:
            return list(pool.map(self.check, conversations))

    def scan_code(self, code: str | bytes, language: str) -> GuardDecision:
        """Code Shield alone, as a decision."""
        reasons: list[Reason] = []
        res = self._run("code_shield", lambda: self.code_shield.scan(code, language), reasons)
        if res is not None and res.is_insecure:
            action = self.policy.insecure_code_block if res.treatment == "BLOCK" else self.policy.insecure_code_warn
            reasons.append(Reason("code_shield", action, ", ".join(sorted({i.rule_id for i in res.issues}))))
        return self._decide(reasons, code=[res] if res is not None else [])

    # -- helpers ---------------------------------------------------------------------------

    def _moderation_reason(self, mod: ModerationResult | None, action: Decision, reasons: list[Reason]) -> None:
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
