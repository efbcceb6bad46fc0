"""Process exit codes with one meaning each, shared by every l3 command line.

A script can tell "the command worked and found something" (``FINDINGS``) from "the command
could not do its job" (every code above 2), and which input was at fault.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    # The command ran and reports what it was asked to find: unsafe content, insecure code.
    FINDINGS = 1
    # The command line itself is wrong (argparse's own code).
    USAGE = 2
    # A configuration file, key or value is invalid.
    CONFIG = 3
    # An input file or row is missing, unreadable, truncated or malformed.
    INPUT = 4
    # A model file (checkpoint, tokenizer, classifier) is missing, corrupt or does not match.
    MODEL = 5
    # A file could not be read or written (permissions, a full disk, a directory in the way).
    IO = 6
    # An optional extra or a dependency of the right version is not installed.
    DEPENDENCY = 7
    # The job started but could not finish (a fit without a solution, a failed run).
    RUNTIME = 8
    # Another process of a distributed job failed: a collective timed out waiting for a rank
    # that did not arrive, or a rank died (a supervisor such as torchrun may restart the job).
    PEER = 9
    # A bug: an exception nobody raised on purpose.
    INTERNAL = 70
    # Stopped by Ctrl-C / SIGINT.
    INTERRUPTED = 130


def describe() -> str:
    """The table of codes, for ``--help`` epilogues and READMEs."""
    return "\n".join(f"{int(c):>4}  {c.name.lower()}" for c in ExitCode)
