"""Errors raised on purpose by l3-guard; every one is an :class:`l3_core.errors.L3Error`."""

from __future__ import annotations

from l3_core.errors import L3Error


class GuardError(L3Error):
    """Base class of every error l3-guard raises on purpose."""


class GuardInputError(GuardError, ValueError):
    """An input to a check is invalid: empty, not text, unknown language, too large."""


class RuleFileError(GuardError, ValueError):
    """A Code Shield rule file is malformed (names the file, rule and field)."""


class ModelFileError(GuardError, ValueError):
    """A classifier model file is missing, malformed, or of another format version."""


class CategoryError(GuardError, ValueError):
    """An unknown or malformed safety category code."""
