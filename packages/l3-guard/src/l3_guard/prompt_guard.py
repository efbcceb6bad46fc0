"""Prompt Guard: is a text BENIGN, a prompt INJECTION, or a JAILBREAK attempt?

Texts longer than the model's window are scored in overlapping windows and the worst window
wins, so an attack buried at the end of a long document is still seen (the anchor model
silently truncates at 512 tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from l3_guard.embedded import PROMPT_GUARD_LABELS, PROMPT_GUARD_MODEL, Trunk, load_embedded_model
from l3_guard.errors import GuardInputError
from l3_guard.fail_closed import error_text, fail_closed

Label = Literal["BENIGN", "INJECTION", "JAILBREAK"]
DEFAULT_MAX_CHARS = 2_000_000


@dataclass
class PromptGuardResult:
    """Scores of the worst window. ``error`` set means the check failed: the label is then
    JAILBREAK (the most severe), never BENIGN."""

    label: Label
    scores: dict[str, float] | None
    windows: int = 1
    worst_span: tuple[int, int] = (0, 0)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failed(cls, error: BaseException | str) -> PromptGuardResult:
        """The fail-closed verdict for a check that could not run: JAILBREAK, no scores."""
        return cls("JAILBREAK", None, 0, (0, 0), error=error_text(error))


class PromptGuard:
    """The shipped three-way classifier (or one trained with ``l3-guard train prompt-guard``).

    A window is an attack when P(JAILBREAK) >= ``jailbreak_threshold`` or P(INJECTION) >=
    ``injection_threshold``; the window with the highest attack probability is reported.
    ``trunk``: which shipped model, as for :class:`l3_guard.EmbeddedModerator` (default
    ``"ngram"``; ``"auto"``: the encoder model where the ``encoder`` extra is installed).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        injection_threshold: float = 0.5,
        jailbreak_threshold: float = 0.5,
        window_chars: int | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
        trunk: Trunk = "ngram",
    ) -> None:
        self.model = load_embedded_model(
            model_path, PROMPT_GUARD_MODEL, PROMPT_GUARD_LABELS, "Prompt Guard", trunk
        )
        self.window_chars = window_chars or int(self.model.meta.get("window_chars", 2000))
        self.injection_threshold = injection_threshold
        self.jailbreak_threshold = jailbreak_threshold
        self.max_chars = max_chars

    def classify(self, text: str) -> PromptGuardResult:
        if not isinstance(text, str):
            raise GuardInputError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise GuardInputError("empty text")
        if len(text) > self.max_chars:
            raise GuardInputError(
                f"text has {len(text):,} characters, over the limit of {self.max_chars:,}"
            )
        probs, spans = self.model.predict_proba_windows(text, self.window_chars)
        attack = 1.0 - probs[:, 0]
        worst = int(attack.argmax())
        p = probs[worst]
        scores = {name: float(v) for name, v in zip(PROMPT_GUARD_LABELS, p)}
        if (
            scores["JAILBREAK"] >= self.jailbreak_threshold
            and scores["JAILBREAK"] >= scores["INJECTION"]
        ):
            label: Label = "JAILBREAK"
        elif scores["INJECTION"] >= self.injection_threshold:
            label = "INJECTION"
        elif scores["JAILBREAK"] >= self.jailbreak_threshold:
            label = "JAILBREAK"
        else:
            label = "BENIGN"
        return PromptGuardResult(label, scores, len(spans), spans[worst])

    def classify_safe(self, text: Any) -> PromptGuardResult:
        """:meth:`classify` that never raises: a failure is reported as JAILBREAK with the error."""
        return fail_closed("prompt guard", lambda: self.classify(text), PromptGuardResult.failed)

    def classify_batch(self, texts: Sequence[Any]) -> list[PromptGuardResult]:
        return [self.classify_safe(t) for t in texts]
