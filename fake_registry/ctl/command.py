"""The ``fake-registry ctl`` command: its parser, connection options and run.

:func:`add_ctl_command` builds ``ctl`` and one subcommand per verb of
:data:`VERBS` (the verb modules' tables joined); :func:`run_ctl` connects a
:class:`~fake_registry.control_client.ControlClient`, runs the chosen verb and
prints its lines, or one error line with exit code 1 (the call failed), 2
(bad usage) or 130 (interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import grpc

from fake_registry import cli_arguments as parse
from fake_registry.command_line import (
    PROG,
    TOKEN_ENV,
    Parser,
    UsageError,
    fail,
    say,
    tls_ca_credentials,
)
from fake_registry.control_client import ControlClient
from fake_registry.ctl import fault_verbs, instance_and_journal_verbs, time_and_auth_verbs
from fake_registry.ctl.verb_table import Verb
from fake_registry.errors import FakeRegistryError

__all__ = ["DEFAULT_TIMEOUT", "VERBS", "add_ctl_command", "run_ctl"]

DEFAULT_TIMEOUT = 10.0

#: Every verb, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {
    **time_and_auth_verbs.VERBS,
    **fault_verbs.VERBS,
    **instance_and_journal_verbs.VERBS,
}


class _VerbParser(Parser):
    """Usage errors name the verb: ``ctl advance-clock: argument SECONDS: ...``."""

    def error(self, message: str) -> NoReturn:
        where = self.prog.removeprefix(f"{PROG} ")
        raise UsageError(f"{where}: {message} (see {self.prog} --help)")


def _connection_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Accepted before the verb and after it; the verb's copies default to
    # SUPPRESS so they do not overwrite values given before it.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target",
        metavar="HOST:PORT",
        type=parse.target,
        default=default(None),
        help="the fake (required), as printed on its first line",
    )
    group.add_argument(
        "--control-token",
        metavar="TOKEN",
        default=default(os.environ.get(TOKEN_ENV) or None),
        help=f"the fake's control token (default: ${TOKEN_ENV})",
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default(None),
        help="the fake serves TLS: trust this CA bundle (e.g. from serve --tls)",
    )
    if "--timeout" not in parser._option_string_actions:  # wait-for has its own
        group.add_argument(
            "--timeout",
            metavar="SECONDS",
            type=parse.positive_seconds,
            default=default(DEFAULT_TIMEOUT),
            help=f"deadline of the control call (default: {DEFAULT_TIMEOUT:g})",
        )


def add_ctl_command(commands: Any) -> None:
    """Add ``ctl`` and its verbs to ``commands`` (the ``add_subparsers()`` object)."""
    ctl = commands.add_parser(
        "ctl",
        help="drive a running fake through its control service",
        description="Drive a running fake (time, clients, tokens, faults, streams, instances, "
        "the call journal) through its gRPC control service.",
        epilog=f"Every verb has --help. Exit codes: 0 done, 1 the call failed, 2 bad usage. "
        f"See docs/control-cli.md. Example: {PROG} ctl --target 127.0.0.1:50051 now",
    )
    _connection_options(ctl, defaults=True)
    ctl.set_defaults(handler=run_ctl)
    verbs = ctl.add_subparsers(
        title="verbs", dest="verb", metavar="VERB", required=True, parser_class=_VerbParser
    )
    for verb in VERBS.values():
        description = f"{verb.help[0].upper()}{verb.help[1:]}."
        parser = verbs.add_parser(verb.name, help=verb.help, description=description)
        for flags, options in verb.arguments:
            parser.add_argument(*flags, **options)
        _connection_options(parser, defaults=False)


@contextlib.contextmanager
def _quiet_grpc_core(enabled: bool) -> Iterator[None]:
    """Silence gRPC C-core's own stderr lines (a failed TLS handshake logs one).

    The core reads ``GRPC_VERBOSITY`` only when grpc is imported, before this
    command runs; so file descriptor 2 points at devnull while the call runs,
    unless the user asked for gRPC's logs.
    """
    if not enabled or "GRPC_VERBOSITY" in os.environ or "GRPC_TRACE" in os.environ:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _hint(code: grpc.StatusCode, args: argparse.Namespace) -> str:
    if code == grpc.StatusCode.UNAVAILABLE:
        if args.tls_ca:
            return f" (is a fake serving TLS at {args.target}, with a certificate from --tls-ca?)"
        return f" (is a fake running at {args.target}? for a TLS fake, give --tls-ca)"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return f" (give the fake's --control-token, or set {TOKEN_ENV})"
    return ""


def run_ctl(args: argparse.Namespace) -> int:
    """The ``ctl`` command: one control call, its result on stdout."""
    verb = VERBS[args.verb]
    label = f"ctl {verb.name}"
    if not args.target:
        raise UsageError(f"{label}: --target HOST:PORT is required (see {PROG} ctl --help)")
    credentials = tls_ca_credentials(args.tls_ca, f"ctl {args.verb}")
    try:
        with (
            _quiet_grpc_core(credentials is not None),
            ControlClient(args.target, args.control_token, credentials, args.timeout) as client,
        ):
            lines = list(verb.run(client, args))
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
        return fail(f"{label}: {code.name}: {details}{_hint(code, args)}", 1)
    except FakeRegistryError as exc:  # a value the client refused before calling
        return fail(f"{label}: {exc.message}", 2)
    except KeyboardInterrupt:
        return fail(f"{label}: interrupted", 130)
    for line in lines:
        say(line)
    return 0
