"""Errors raised on purpose by l3-guard.

Each one is a :class:`GuardError` and also the l3-core class for its kind, so the exit code
of the command line follows the class (:mod:`l3_core.exit_codes`) and a caller can catch
"any bad input" across l3 packages with :class:`l3_core.errors.InputError`.
"""

from __future__ import annotations

from l3_core import errors as core


class GuardError(core.L3Error):
    """Base class of every error l3-guard raises on purpose."""


class GuardInputError(GuardError, core.InputError):
    """An input to a check is invalid: empty, not text, unknown language, too large (exit 4)."""


class RuleFileError(GuardError, core.ConfigError):
    """A Code Shield rule file is malformed; names the file, rule and field (exit 3)."""


class ModelFileError(GuardError, core.ModelFileError):
    """A classifier model file is missing, malformed, or not the model asked for (exit 5)."""


class CategoryError(GuardError, core.ConfigError):
    """An unknown or malformed safety category code (exit 3)."""


class EncoderUnavailableError(GuardError, core.DependencyError):
    """The pretrained text encoder a model needs is not installed or cannot load (exit 7)."""
