"""The errors l3-data raises on purpose; each names the file, key or line and the value."""

from __future__ import annotations

from l3_core.errors import ConfigError, L3Error


class DataError(L3Error):
    """Base class of every error raised on purpose by l3-data."""


class PipelineConfigError(DataError, ConfigError):
    """A pipeline file names an unknown step or option, or a value of the wrong kind."""


class InputFormatError(DataError, ValueError):
    """An input file cannot be read at all (missing, unknown format, unreadable container)."""


class ModelFileError(DataError, ValueError):
    """A language-ID or classifier model file is missing or not a model."""
