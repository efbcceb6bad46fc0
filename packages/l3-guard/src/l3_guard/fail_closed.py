"""The one fail-closed path: a check that raises gives its most severe verdict, never "safe".

Every l3-guard entry point that must answer even when a check cannot run (the ``*_safe``
methods, the composed :class:`~l3_guard.guard.Guard`, the HTTP service, the batch CLI) goes
through :func:`fail_closed` with the verdict factory of its result type, so the error is
logged once, kept in the verdict as ``"ClassName: message"``, and never read as allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def error_text(error: BaseException | str) -> str:
    """How an error is kept in a verdict: ``"GuardInputError: empty text"`` for an exception;
    a text (a batch's ``"file:line: reason"``) is kept as it is."""
    return error if isinstance(error, str) else f"{type(error).__name__}: {error}"


def fail_closed(what: str, check: Callable[[], T], verdict: Callable[[Exception], T]) -> T:
    """``check()``, or ``verdict(error)`` when it raises (``what`` names the check in the log).

    Any ``Exception`` counts: a check that fails for a reason nobody foresaw must still not
    let content through. ``KeyboardInterrupt`` and ``SystemExit`` are not caught.
    """
    try:
        return check()
    except Exception as e:
        log.warning("%s failed: %s", what, error_text(e))
        return verdict(e)
