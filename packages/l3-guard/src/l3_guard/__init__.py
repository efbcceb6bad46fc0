"""l3-guard: system-level safety for the l3 herd (Llama 3 paper, section 5.4.7).

- :class:`Guard` composes the checks into ALLOW / WARN / BLOCK with reasons; fails closed.
- :class:`EmbeddedModerator`: Llama Guard 3 taxonomy moderation with a small shipped model;
  ``LlamaGuardLLM`` (``l3-guard[llm]``): any HF-format causal LM via l3-core.
- :class:`PromptGuard`: BENIGN / INJECTION / JAILBREAK, worst window wins on long inputs.
- :class:`CodeShield`: insecure-code detection over 12 languages with rules as data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from l3_core.lazy import lazy_attributes
from l3_core.versions import package_version
from l3_guard.code_shield import CodeIssue, CodeScanResult, CodeShield
from l3_guard.errors import (
    CategoryError,
    GuardError,
    GuardInputError,
    ModelFileError,
    RuleFileError,
)
from l3_guard.fail_closed import fail_closed
from l3_guard.guard import Guard, GuardDecision, GuardPolicy, Reason
from l3_guard.llama_guard_format import ParsedVerdict, Turn, build_prompt, parse_output
from l3_guard.moderation import EmbeddedModerator, ModerationResult
from l3_guard.prompt_guard import PromptGuard, PromptGuardResult
from l3_guard.taxonomy import LLAMA_GUARD_3_CATEGORIES, Category, Taxonomy

__version__ = package_version("l3-guard")

if TYPE_CHECKING:
    from l3_guard.llm_backend import LlamaGuardLLM


# The LLM backend needs torch (the llm extra); import it only when asked for.
__getattr__ = lazy_attributes("l3_guard", {"LlamaGuardLLM": "l3_guard.llm_backend"})


__all__ = [
    "LLAMA_GUARD_3_CATEGORIES",
    "Category",
    "CategoryError",
    "CodeIssue",
    "CodeScanResult",
    "CodeShield",
    "EmbeddedModerator",
    "Guard",
    "GuardDecision",
    "GuardError",
    "GuardInputError",
    "GuardPolicy",
    "LlamaGuardLLM",
    "ModelFileError",
    "ModerationResult",
    "ParsedVerdict",
    "PromptGuard",
    "PromptGuardResult",
    "Reason",
    "RuleFileError",
    "Taxonomy",
    "Turn",
    "build_prompt",
    "fail_closed",
    "parse_output",
]
