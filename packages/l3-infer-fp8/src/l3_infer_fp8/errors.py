"""Errors raised on purpose by l3-infer-fp8; each is also the l3-core class of its kind, so the exit
code follows (see ``l3_core.exit_codes``)."""

from __future__ import annotations

from l3_core.errors import ConfigError, InputError, L3Error, ModelFileError


class InferError(L3Error):
    """Base class of every error l3-infer-fp8 raises on purpose."""


class InferConfigError(InferError, ConfigError):
    """A config key or value is invalid (names the key, the value and what is allowed)."""


class InferInputError(InferError, InputError):
    """An input file or row is invalid (names the file, the line, the field and the value)."""


class InferModelError(InferError, ModelFileError):
    """A model or checkpoint directory is missing, malformed, or does not fit the task."""


class QueueFullError(InferError):
    """The engine's bounded waiting queue is full: retry later (the server answers 429)."""


class InvalidRequestError(InferInputError):
    """A generation request has a missing or invalid field; ``field`` names it (the server
    answers HTTP 400 with it as the ``param``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class QuantizedCheckpointError(InferModelError):
    """A pre-quantised checkpoint is tampered with or does not match its
    ``quantization_config.json`` (names the file, the tensor or key, and what was expected)."""
