"""``fake-registry``: the standalone fake (``python -m fake_registry``).

Commands: ``serve`` (:mod:`fake_registry.serve`, the default when no command
is given: run the fake until SIGINT or SIGTERM), ``ctl``
(:mod:`fake_registry.ctl`: drive a running fake through its control service)
and ``health`` (:mod:`fake_registry.health`: ask its gRPC health service).
This module builds the parser and runs the chosen command; what the commands
share (program name, usage errors, the one-line error format) lives in
:mod:`fake_registry.command_line`, their argument types in
:mod:`fake_registry.cli_arguments`.

Exit codes: 0 done, 1 the command failed (the server cannot listen, a control
call failed), 2 a bad command line or input file. Every error is one line on
stderr, ``fake-registry: error: ...``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from fake_registry.command_line import PROG as PROG
from fake_registry.command_line import TOKEN_ENV as TOKEN_ENV
from fake_registry.command_line import Parser, fail
from fake_registry.command_line import UsageError as UsageError
from fake_registry.ctl import add_ctl_command
from fake_registry.health import add_health_command
from fake_registry.serve import LOG_LEVELS as LOG_LEVELS
from fake_registry.serve import STOP_GRACE as STOP_GRACE
from fake_registry.serve import _check_local as _check_local
from fake_registry.serve import add_serve_arguments, serve

# The names that moved (PROG, TOKEN_ENV, UsageError, LOG_LEVELS, STOP_GRACE,
# _check_local) stay importable from here, as before.
__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``fake-registry`` parser: serve options at top level and under ``serve``."""
    parser = Parser(
        prog=PROG,
        description="Run the in-memory fake registry and client-auth gRPC server.",
        epilog=f"Without a command, {PROG} serves (same as '{PROG} serve').",
    )
    parser.add_argument("--version", action=_VersionAction)
    add_serve_arguments(parser, defaults=True)
    parser.set_defaults(handler=serve)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve", help="run the fake until SIGINT or SIGTERM (the default)"
    )
    add_serve_arguments(serve_parser, defaults=False)
    serve_parser.set_defaults(handler=serve)
    add_ctl_command(commands)
    add_health_command(commands)
    return parser


class _VersionAction(argparse.Action):
    """``--version``; looks the version up only when asked (it costs a start ~15 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, nargs=0, help="print the version and exit"
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("aio-registry-sdk")
        except PackageNotFoundError:
            number = "(not installed)"
        print(f"{PROG} {number}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command, return the exit code."""
    try:
        args = build_parser().parse_args(argv)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except UsageError as exc:
        return fail(str(exc), 2)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
