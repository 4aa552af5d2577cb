"""``fake-registry``: the standalone fake (``python -m fake_registry``).

Output contract (docs/standalone.md): the first stdout line is
``listening on HOST:PORT``, written and flushed only once the server answers
calls; informative lines follow. SIGINT and SIGTERM stop the server and exit
with 0. Every error is one line on stderr, ``fake-registry: error: ...``, with
exit code 2 for a bad command line or seed file and 1 when the server cannot
listen. Client secrets given on the command line are never printed.

Commands: ``serve`` (the default when no command is given). The parser is a
subcommand parser so later commands (``ctl``) slot in beside ``serve``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, NoReturn

from fake_registry.clock import OffsetClock
from fake_registry.fake import DEFAULT_CLIENTS, FakeRegistry
from fake_registry.seed import SeedError, ServiceSeed, apply_seed, fake_services, load_seed
from fake_registry.state.auth import DEFAULT_TOKEN_TTL

__all__ = ["build_parser", "main"]

PROG = "fake-registry"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Seconds open calls (heartbeat streams) get to finish when the server stops.
STOP_GRACE = 0.5

log = logging.getLogger("fake_registry.cli")


class UsageError(Exception):
    """A bad command line or input file: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """Reports errors by raising :class:`UsageError` instead of printing usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


# --- argument types: messages never echo the value (it may hold a secret) ---


def _client(text: str) -> tuple[str, str]:
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        raise argparse.ArgumentTypeError("expected KEY:SECRET with a non-empty key and secret")
    return key, secret


def _int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what} (got {value})")
        return value

    return parse


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)} (got {text!r})")
    return level


def _add_serve_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # The same options exist at top level (serve is the default command) and
    # under `serve`. The subcommand's copies default to SUPPRESS so they do not
    # overwrite values given before the command name.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--host", default=default("127.0.0.1"), help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=_int_in(0, 65535, "a port in 0..65535"),
        default=default(0),
        help="port to bind; 0 (the default) picks a free one",
    )
    parser.add_argument(
        "--client",
        dest="clients",
        metavar="KEY:SECRET",
        type=_client,
        action="append",
        default=default(None),
        help="accept this credential (repeatable); "
        "without any, the fake accepts demo-key:demo-secret",
    )
    parser.add_argument(
        "--token-ttl",
        metavar="SECONDS",
        type=_int_in(1, None, "a positive integer"),
        default=default(DEFAULT_TOKEN_TTL),
        help=f"token lifetime in seconds (default: {DEFAULT_TOKEN_TTL})",
    )
    parser.add_argument(
        "--seed",
        metavar="FILE",
        default=default(None),
        help="preload services and instances from a .toml or .json seed file",
    )
    parser.add_argument(
        "--fake-services",
        metavar="N",
        type=_int_in(0, None, "a non-negative integer"),
        default=default(0),
        help="also preload N realistic services generated with faker",
    )
    parser.add_argument(
        "--faker-seed",
        metavar="S",
        type=_int_in(-(2**63), None, "an integer"),
        default=default(None),
        help="seed for --fake-services: the same seed gives the same data (default: 0)",
    )
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=default("WARNING"),
        metavar="LEVEL",
        help=f"logging to stderr: {', '.join(LOG_LEVELS)} (default: WARNING)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``fake-registry`` parser: serve options at top level and under ``serve``."""
    parser = _Parser(
        prog=PROG,
        description="Run the in-memory fake registry and client-auth gRPC server.",
        epilog=f"Without a command, {PROG} serves (same as '{PROG} serve').",
    )
    parser.add_argument("--version", action=_VersionAction)
    _add_serve_arguments(parser, defaults=True)
    parser.set_defaults(handler=serve)
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve", help="run the fake until SIGINT or SIGTERM (the default)"
    )
    _add_serve_arguments(serve_parser, defaults=False)
    serve_parser.set_defaults(handler=serve)
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
        return _fail(str(exc), 2)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    return code


# --- serve ------------------------------------------------------------------


def _grpc_host(host: str) -> str:
    # An IPv6 literal needs brackets in a gRPC address ("[::1]:50051").
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound, checked before gRPC tries.

    gRPC's own bind failure also writes a C-core log line to stderr; checking
    first keeps the error to one line (a port taken in between still fails,
    just less tidily).
    """
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve --host {host}: {exc.strerror}"
    errors: list[str] = []
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC does
            try:
                probe.bind(address)
            except OSError as exc:
                errors.append(exc.strerror or str(exc))
            else:
                return None
    return f"cannot listen on {_grpc_host(bare)}:{port}: {errors[0] if errors else 'no address'}"


# (what to call it in the output, what to prefix its errors with, the services)
Source = tuple[str, str, list[ServiceSeed]]


def _seed_data(args: argparse.Namespace) -> list[Source]:
    sources: list[Source] = []
    if args.faker_seed is not None and not args.fake_services:
        raise UsageError(f"--faker-seed needs --fake-services N (see {PROG} --help)")
    if args.seed is not None:
        try:
            services = load_seed(args.seed)
        except SeedError as exc:
            raise UsageError(f"--seed {args.seed}: {exc}") from None
        sources.append((f"seed file {args.seed}", f"--seed {args.seed}", services))
    if args.fake_services:
        faker_seed = args.faker_seed if args.faker_seed is not None else 0
        generated = fake_services(args.fake_services, faker_seed)
        sources.append((f"faker seed {faker_seed}", "--fake-services", generated))
    return sources


def _clients(args: argparse.Namespace) -> dict[str, str] | None:
    if not args.clients:
        return None
    clients: dict[str, str] = {}
    for key, secret in args.clients:
        if key in clients:
            raise UsageError(f"argument --client: key {key!r} given twice")
        clients[key] = secret
    return clients


_Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class _StopSignals:
    """Turns SIGINT and SIGTERM into an event while installed (main thread only)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: str | None = None
        self._previous: dict[signal.Signals, _Handler] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signal.Signals(signum).name
        self.event.set()

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _say(line: str) -> None:
    # Flushed line by line: a supervisor reads these from a pipe. A reader that
    # went away must not stop the server.
    try:
        print(line, flush=True)
    except BrokenPipeError:
        # What the Python docs advise: point stdout at devnull so the flush at
        # exit does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def serve(args: argparse.Namespace) -> int:
    """Run the fake until SIGINT or SIGTERM; the ``serve`` command."""
    # The level applies to the fake's own loggers; libraries (grpc, asyncio)
    # stay at WARNING or above, else DEBUG drowns in their chatter.
    level = logging.getLevelName(args.log_level)
    logging.basicConfig(
        level=max(level, logging.WARNING),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fake_registry").setLevel(level)
    with _StopSignals() as stop:
        clients = _clients(args)
        sources = _seed_data(args)
        host = _grpc_host(args.host)
        problem = _bind_problem(host, args.port)
        if problem:
            return _fail(problem, 1)
        fake = FakeRegistry(
            clients=clients,
            token_ttl=args.token_ttl,
            clock=OffsetClock(),
            host=host,
            port=args.port,
        )
        counts = []
        for label, prefix, services in sources:
            try:
                counts.append((label, apply_seed(fake, services)))
            except SeedError as exc:
                raise UsageError(f"{prefix}: {exc}") from None
        try:
            fake.start()
        except (OSError, RuntimeError) as exc:
            return _fail(f"cannot listen on {host}:{args.port}: {exc}", 1)
        try:
            _say(f"listening on {fake.address}")
            if clients is None:
                for key, secret in DEFAULT_CLIENTS.items():
                    _say(f"client {key} (the default; secret: {secret})")
            else:
                for key in clients:
                    _say(f"client {key} (secret as given)")
            _say(f"token ttl {args.token_ttl} s")
            for label, count in counts:
                _say(f"seeded {count.services} services, {count.instances} instances ({label})")
            _say("stop with Ctrl+C or SIGTERM")
            log.info("serving on %s", fake.address)
            stop.event.wait()
            log.info("%s received, stopping", stop.received)
        finally:
            fake.stop(STOP_GRACE)
    return 0
