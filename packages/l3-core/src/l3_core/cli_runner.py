"""One way to build an l3 command line: subcommands as data, one error path, one exit-code table.

Every l3 package's CLI is a list of :class:`Command` handed to :func:`run_cli`. The runner adds
``--version`` (from the installed package metadata), ``-v``/``-q`` logging, and turns what
goes wrong into one line on stderr with a documented exit code (:mod:`l3_core.exit_codes`):
an :class:`~l3_core.errors.L3Error` gives its own code and message, an ``OSError`` names the
file, Ctrl-C gives 130, anything else is reported as an internal error (the traceback is shown
with ``L3_DEBUG=1``). Configurable commands take ``--config FILE`` and repeated
``--set a.b=value`` (:func:`add_config_arguments`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from l3_core.errors import L3Error
from l3_core.exit_codes import ExitCode, describe
from l3_core.versions import package_version

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one line of help, how to add its arguments, what it runs."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """``--config FILE`` (TOML) and ``--set KEY=VALUE`` (repeatable; any dotted key)."""
    parser.add_argument("--config", required=required, help="TOML config file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.lr=3e-4",
    )


def build_parser(
    prog: str,
    commands: Sequence[Command],
    description: str | None = None,
    distribution: str | None = None,
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="exit codes:\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"{prog} {package_version(distribution or prog)}"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in commands:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def run_cli(
    prog: str,
    commands: Sequence[Command],
    argv: Sequence[str] | None = None,
    description: str | None = None,
    distribution: str | None = None,
) -> int:
    """Parse ``argv``, run the chosen command, return its exit code (never raise, but for
    argparse's own ``SystemExit`` on ``--help``, ``--version`` and usage errors)."""
    parser = build_parser(prog, commands, description, distribution)
    opts = parser.parse_args(argv)
    _configure_logging(opts.verbose, opts.quiet)
    where = f"{prog} {opts.command}"
    try:
        return int(opts._run(opts))
    except L3Error as e:
        return _fail(where, str(e), e.exit_code)
    except KeyboardInterrupt:
        return _fail(where, "interrupted", ExitCode.INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (``| head``): not an error of ours, and nothing more to say.
        sys.stderr.close()
        return ExitCode.OK
    except OSError as e:
        name = f"{e.filename}: " if e.filename else ""
        return _fail(where, f"{name}{e.strerror or e}", ExitCode.IO)
    except Exception as e:
        if os.environ.get("L3_DEBUG"):
            raise
        return _fail(
            where,
            f"internal error: {type(e).__name__}: {e} (set L3_DEBUG=1 for the traceback)",
            ExitCode.INTERNAL,
        )


def _fail(where: str, message: str, code: ExitCode) -> int:
    print(f"{where}: error: {message}", file=sys.stderr)
    return int(code)


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.DEBUG if verbose > 1 else logging.INFO
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
