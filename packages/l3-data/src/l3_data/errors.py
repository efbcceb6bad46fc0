"""The errors l3-data raises on purpose; each names the file, key or line and the value.

Every class subclasses the l3-core class of the same kind of failure, so the command line's
exit code follows the class (:mod:`l3_core.exit_codes`) and a caller can catch "bad input"
across packages with :class:`l3_core.errors.InputError`.
"""

from __future__ import annotations

from l3_core import errors as core


class L3DataError(core.L3Error):
    """Base class of every error raised on purpose by l3-data."""


class PipelineConfigError(L3DataError, core.ConfigError):
    """A pipeline file names an unknown step or option, or a value of the wrong kind."""


class WorkdirMismatchError(L3DataError, core.ConfigError):
    """The workdir holds the work of a different pipeline."""


class InputFormatError(L3DataError, core.InputError):
    """An input file cannot be read at all (missing, unknown format, unreadable container)."""


class InputChangedError(L3DataError, core.InputError):
    """A resumed run's input files are not the ones its workdir recorded at the first start.

    An input error (exit 4), not a configuration one: the pipeline file is the same, what
    differs is the data under it."""


class ModelFileError(L3DataError, core.ModelFileError):
    """A language-ID or classifier model file is missing, not a model, or a refused format."""


class MissingExtraError(L3DataError, core.DependencyError):
    """A step, input format or executor needs an optional extra that is not installed."""


class OptionError(L3DataError, core.ConfigError):
    """A command option has a value outside the range it accepts."""
