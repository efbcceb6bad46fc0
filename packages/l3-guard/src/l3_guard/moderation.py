"""Moderation of user prompts and agent responses against the Llama Guard 3 taxonomy.

Two backends share one result type: :class:`EmbeddedModerator` (a small multilingual
classifier shipped with the package, no LLM weights) and ``LlamaGuardLLM`` in
:mod:`l3_guard.llm_backend` (any Hugging Face format causal LM through l3-core). Both fail
closed: an internal error yields :func:`error_result`, ``unsafe`` with the error kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from l3_core.errors import ConfigError
from l3_guard.embedded import (
    MODERATION_HEADS,
    MODERATION_MODEL,
    Trunk,
    load_embedded_model,
    moderation_text,
)
from l3_guard.errors import CategoryError, GuardInputError
from l3_guard.fail_closed import error_text, fail_closed
from l3_guard.llama_guard_format import Role, Turn, as_turns
from l3_guard.taxonomy import CATEGORY_CODES, Taxonomy

DEFAULT_MAX_CHARS = 1_000_000
_STANDARD = set(CATEGORY_CODES)

# Refusals in the languages Llama Guard 3 supports: a response that refuses does not carry
# the harm its prompt asked for.
_REFUSAL = re.compile(
    r"^\W*(?:i(?:'m| am) sorry|sorry,|i can(?:no|')t|i cannot|i won't|i will not|i'm not able|"
    r"i am not able|i'm unable|i am unable|as an ai|i must decline|i do not (?:feel comfortable|"
    r"provide)|je ne peux pas|désolé|lo siento|no puedo|es tut mir leid|ich kann (?:dir )?(?:da)?"
    r"(?:bei )?nicht|mi dispiace|non posso|desculpe|não posso|मुझे खेद है|मैं .{0,20}नहीं कर सकता|"
    r"ขออภัย|ฉันไม่สามารถ)",
    re.I,
)


@dataclass
class ModerationResult:
    """A moderation verdict. ``error`` set means the check failed and the verdict is unsafe."""

    label: Literal["safe", "unsafe"]
    categories: list[str]
    score: float
    role: Role
    backend: str
    category_scores: dict[str, float] = field(default_factory=dict)
    raw: str | None = None
    malformed: bool = False
    error: str | None = None
    windows: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_result(role: Any, backend: str, exc: BaseException | str) -> ModerationResult:
    """The fail-closed verdict for a check that could not run: unsafe, score 1, error kept."""
    r: Role = role if role in ("user", "agent") else "user"
    return ModerationResult("unsafe", [], 1.0, r, backend, error=error_text(exc))


class Moderator(Protocol):
    name: str

    def moderate(
        self, conversation: str | Sequence[Turn | dict], role: Role | None = None
    ) -> ModerationResult: ...


class EmbeddedModerator:
    """The shipped classifier: P(unsafe) plus one probability per S-category.

    ``taxonomy`` may be any subset of S1..S14: categories switched off are not reported, and a
    text is unsafe only when a chosen category is likely. Custom categories need a model that
    can read their descriptions (the LLM backend); asking this backend for one is a
    configuration error, never a silent pass.

    ``category_thresholds`` (code -> threshold on the joint score P(unsafe, code)) flags a
    category on its own: a text whose score for it reaches its threshold is unsafe with that
    category, whatever the overall score (a lower bar for the severe ones, as deployments of
    Llama Guard 3 do). Without it, the model file's tuned thresholds apply when it has them.
    ``trunk`` picks the shipped model: ``"ngram"`` (the default), ``"encoder"``, or ``"auto"``
    (the encoder model where the ``encoder`` extra is installed, else the n-gram model). The
    n-gram model stays the default until the encoder model is better on every set: it flags
    fewer safe prompts on the held-out set but more on the dev set (see the README).
    """

    name = "embedded"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        taxonomy: Taxonomy | None = None,
        threshold: float = 0.5,
        category_threshold: float = 0.3,
        category_thresholds: Mapping[str, float] | None = None,
        window_chars: int = 2000,
        max_chars: int = DEFAULT_MAX_CHARS,
        trunk: Trunk = "ngram",
    ) -> None:
        self.taxonomy = taxonomy or Taxonomy.default()
        custom = [c for c in self.taxonomy.codes if c not in _STANDARD]
        if custom:
            raise ConfigError(
                f"the embedded moderation model knows S1..S14 only, not custom categories {custom}; "
                "use the LLM backend (l3-guard[llm]) for custom categories"
            )
        self.model = load_embedded_model(
            model_path, MODERATION_MODEL, MODERATION_HEADS, "moderation", trunk
        )
        self.threshold = threshold
        self.category_threshold = category_threshold
        self.window_chars = window_chars
        self.max_chars = max_chars
        self._full = set(self.taxonomy.codes) == _STANDARD
        self._cols = [1 + CATEGORY_CODES.index(c) for c in self.taxonomy.codes]
        self.category_thresholds = _category_thresholds(
            category_thresholds
            if category_thresholds is not None
            else self.model.meta.get("category_thresholds", {})
        )

    def _score(self, texts: list[str]) -> np.ndarray:
        return self.model.predict_proba(texts)

    def moderate(
        self, conversation: str | Sequence[Turn | dict], role: Role | None = None
    ) -> ModerationResult:
        turns = as_turns(conversation, role or "user")
        role = role or turns[-1].role
        target = next((t for t in reversed(turns) if t.role == role), None)
        if target is None:
            raise GuardInputError(f"no {role} turn to classify in the conversation")
        total = sum(len(t.content) for t in turns)
        if total > self.max_chars:
            raise GuardInputError(
                f"conversation has {total:,} characters, over the limit of {self.max_chars:,}"
            )
        prompt = None
        if role == "agent":
            idx = max(i for i, t in enumerate(turns) if t is target)
            prompt = next((t.content for t in reversed(turns[:idx]) if t.role == "user"), None)
        # A request hidden in a long prompt is sought at every scale; a response's own content
        # is judged in full windows (small windows of a long helpful answer are noise).
        scales = (1, 4, 16) if role == "user" or prompt is None else (1,)
        probs, spans = self.model.predict_proba_windows(
            moderation_text(target.content), self.window_chars, scales
        )
        if role == "agent" and prompt is not None:
            # A response is as harmful as the request it complies with; on its own, a long
            # helpful answer only counts when its content is clearly unsafe.
            p_prompt = self._score([moderation_text(prompt)])[0]
            comply = 0.05 if _REFUSAL.search(target.content) else 1.0
            probs = np.maximum(p_prompt * comply, np.clip((probs - 0.5) * 2.0, 0.0, 1.0))
        worst = int(
            np.argmax(probs[:, 0] if self._full else probs[:, 0] * probs[:, self._cols].max(axis=1))
        )
        p = probs[worst]
        # Category heads give P(category | unsafe); the reported scores are joint P(unsafe, c).
        conditional = {c: float(p[col]) for c, col in zip(self.taxonomy.codes, self._cols)}
        cat_scores = {c: float(p[0]) * v for c, v in conditional.items()}
        score = float(p[0]) if self._full else max(cat_scores.values())
        fired = [
            c
            for c, v in sorted(cat_scores.items(), key=lambda kv: -kv[1])
            if c in self.category_thresholds and v >= self.category_thresholds[c]
        ]
        unsafe = score >= self.threshold or bool(fired)
        label: Literal["safe", "unsafe"] = "unsafe" if unsafe else "safe"
        cats: list[str] = []
        if label == "unsafe":
            ranked = sorted(conditional.items(), key=lambda kv: -kv[1])
            listed = [c for c, v in ranked if v >= self.category_threshold] or [ranked[0][0]]
            cats = (
                fired + [c for c in listed if c not in fired] if score >= self.threshold else fired
            )
        return ModerationResult(label, cats, score, role, self.name, cat_scores, windows=len(spans))

    def moderate_safe(self, conversation: Any, role: Any = None) -> ModerationResult:
        """:meth:`moderate` that never raises: failures come back unsafe with the error."""
        return fail_closed(
            "moderation",
            lambda: self.moderate(conversation, role),
            lambda e: error_result(role, self.name, e),
        )


def _category_thresholds(thresholds: Mapping[str, float]) -> dict[str, float]:
    """Checked per-category thresholds: S-codes with values in (0, 1]."""
    out = {}
    for code, value in thresholds.items():
        if code not in _STANDARD:
            raise CategoryError(f"category threshold for unknown category {code!r} (S1..S14)")
        if not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
            raise CategoryError(f"category threshold {code}={value!r} is not in (0, 1]")
        out[code] = float(value)
    return out
