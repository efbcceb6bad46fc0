"""The error hierarchy every l3 package builds on.

Each package subclasses :class:`L3Error` so callers can catch "anything l3 refused" in one
place, while messages name the file, key and value that were wrong and what was expected.
"""

from __future__ import annotations


class L3Error(Exception):
    """Base class of every error raised on purpose by an l3 package."""


class ConfigError(L3Error, ValueError):
    """A configuration key, value or file is invalid."""


class PresetError(ConfigError, KeyError):
    """An unknown model preset was requested."""

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return str(self.args[0]) if self.args else ""


class TokenizerError(L3Error, ValueError):
    """A tokenizer file or an input to the tokenizer is invalid."""


class CheckpointError(L3Error, ValueError):
    """A checkpoint is missing, malformed, or does not match the model."""


class ShardError(L3Error, ValueError):
    """A token shard is missing, truncated, or was written with another tokenizer."""


class InputError(L3Error, ValueError):
    """A model input (token ids, sequence length, document boundaries) is invalid."""
