"""Errors raised on purpose by l3-vision; each derives from the l3-core class of its kind, so
the exit code follows the class (:mod:`l3_core.exit_codes`)."""

from __future__ import annotations

from l3_core.errors import (
    CheckpointError,
    ConfigError,
    DependencyError,
    InputError,
    L3Error,
)


class VisionError(L3Error):
    """Base class of every error l3-vision raises on purpose."""


class ImageError(VisionError, InputError):
    """An image cannot be read or decoded (names the file and the reason)."""


class DatasetError(VisionError, InputError):
    """An image-text dataset file or row is malformed (names the file, line and field)."""


class VisionConfigError(VisionError, ConfigError):
    """A vision model or training configuration value is invalid."""


class VisionCheckpointError(VisionError, CheckpointError):
    """A vision checkpoint is missing, malformed or does not match the model."""


class MissingExtraError(VisionError, DependencyError):
    """An optional extra is needed: the message names the ``pip install`` line."""
