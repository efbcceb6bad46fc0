"""Errors raised on purpose by l3-speech; each also derives from the l3-core class of its kind,
so the exit code follows the class (:mod:`l3_core.exit_codes`)."""

from __future__ import annotations

from l3_core.errors import ConfigError, DependencyError, InputError, L3Error, ModelFileError


class SpeechError(L3Error):
    """Base class of every error l3-speech raises on purpose (a failed run: exit 8)."""


class AudioInputError(SpeechError, InputError):
    """An audio file or manifest row is unreadable, empty, too long or of a refused rate."""


class SpeechConfigError(SpeechError, ConfigError):
    """A speech config key or value is invalid (names the key and the allowed values)."""


class SpeechModelFileError(SpeechError, ModelFileError):
    """A speech checkpoint is missing, malformed or does not match its config."""


class SpeechDependencyError(SpeechError, DependencyError):
    """A tool the command needs (espeak-ng, matplotlib) is not installed."""
