"""The error hierarchy every l3 package builds on.

Each package subclasses these classes, so callers can catch "anything l3 refused" in one
place (:class:`L3Error`) or one kind of failure across packages (:class:`InputError`), while
messages name the file, key and value that were wrong and what was expected. Every class
carries the process exit code that l3 command lines return for it
(:mod:`l3_core.exit_codes`).
"""

from __future__ import annotations

from l3_core.exit_codes import ExitCode


class L3Error(Exception):
    """Base class of every error raised on purpose by an l3 package."""

    exit_code: ExitCode = ExitCode.RUNTIME


class ConfigError(L3Error, ValueError):
    """A configuration key, value or file is invalid."""

    exit_code = ExitCode.CONFIG


class PresetError(ConfigError, KeyError):
    """An unknown model preset was requested."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class InputError(L3Error, ValueError):
    """An input (a file, a row, a model input such as token ids) is missing or invalid."""

    exit_code = ExitCode.INPUT


class TokenizerError(InputError):
    """A tokenizer file or an input to the tokenizer is invalid."""


class ShardError(InputError):
    """A token shard is missing, truncated, or was written with another tokenizer."""


class ModelFileError(L3Error, ValueError):
    """A model file (weights, a classifier, a quantiser) is missing, corrupt or of another format."""

    exit_code = ExitCode.MODEL


class CheckpointError(ModelFileError):
    """A checkpoint is missing, malformed, or does not match the model."""


class PeerFailureError(L3Error, RuntimeError):
    """A collective of a distributed job failed: it timed out, or another rank died."""

    exit_code = ExitCode.PEER


class OutputError(L3Error, OSError):
    """An output file or directory cannot be written."""

    exit_code = ExitCode.IO


class DependencyError(L3Error, ImportError):
    """An optional extra is not installed, or a dependency has a version this code does not support."""

    exit_code = ExitCode.DEPENDENCY
