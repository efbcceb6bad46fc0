"""l3-guard on the way in and out (optional: ``pip install l3-guard``).

A BLOCK decision, or any failure of the guard itself, becomes a refusal naming the check and
its category; nothing unchecked passes (fail closed). WARN decisions are logged and allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

from l3_core.errors import DependencyError

log = logging.getLogger(__name__)

REFUSAL = "I can't help with that: the {where} was blocked by {reasons}."


class GuardLike(Protocol):
    def check_input(self, conversation: Any) -> Any: ...

    def check_output(self, conversation: Any, response: str | None = None) -> Any: ...


def load_guard() -> GuardLike:
    try:
        from l3_guard import Guard
    except ImportError as e:
        raise DependencyError(
            f"--guard needs l3-guard: pip install 'l3-infer-fp8[guard]' ({e})"
        ) from e
    return Guard()


class ServerGuard:
    def __init__(self, guard: GuardLike) -> None:
        self.guard = guard

    def refuse_input(self, turns: Sequence[dict]) -> str | None:
        """The refusal for a blocked request, or None to let it through."""
        return self._verdict("request", lambda: self.guard.check_input(list(turns)))

    def refuse_output(self, turns: Sequence[dict], response: str) -> str | None:
        return self._verdict("response", lambda: self.guard.check_output(list(turns), response))

    @staticmethod
    def _verdict(where: str, check) -> str | None:
        try:
            decision = check()
            verdict = decision.decision
            reasons = [f"{r.check} ({r.detail})" for r in decision.reasons if r.decision == "BLOCK"]
        except Exception as e:  # fail closed: an unchecked conversation is not served
            log.warning("guard failed on the %s: %s", where, e)
            return REFUSAL.format(
                where=where, reasons=f"the guard, which failed ({type(e).__name__})"
            )
        if verdict == "BLOCK":
            return REFUSAL.format(where=where, reasons="; ".join(reasons) or "the guard")
        if verdict not in ("ALLOW", "WARN"):
            return REFUSAL.format(where=where, reasons=f"the guard (unknown decision {verdict!r})")
        if verdict == "WARN":
            log.info("guard warned on the %s: %s", where, decision.reasons)
        return None
