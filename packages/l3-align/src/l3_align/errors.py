"""Errors raised on purpose by l3-align; each is also the l3-core class of its kind, so the exit
code follows (see ``l3_core.exit_codes``)."""

from __future__ import annotations

from l3_core.errors import ConfigError, InputError, L3Error, ModelFileError


class AlignError(L3Error):
    """Base class of every error l3-align raises on purpose."""


class AlignConfigError(AlignError, ConfigError):
    """A config key or value is invalid (names the key, the value and what is allowed)."""


class AlignInputError(AlignError, InputError):
    """An input file or row is invalid (names the file, the line, the field and the value)."""


class AlignModelError(AlignError, ModelFileError):
    """A model or checkpoint directory is missing, malformed, or does not fit the task."""


class AlignArchitectureError(AlignModelError):
    """Checkpoints that must share an architecture (averaging) do not: names both and the key."""
