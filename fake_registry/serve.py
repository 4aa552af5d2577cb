"""The ``fake-registry serve`` command: run the standalone fake until a stop signal.

Output contract (docs/standalone.md): the first stdout line is
``listening on HOST:PORT``, written and flushed only once the server answers
calls; informative lines follow. SIGINT and SIGTERM stop the server and exit
with 0. Every error is one line on stderr, with exit code 2 for a bad command
line, seed or TLS file and 1 when the server cannot listen. Client secrets
and the control token are never printed.

This module holds the serve options (:func:`add_serve_arguments`), the checks
before binding (loopback only unless ``--allow-remote``, a free port, TLS
files that match), the seed data to preload and :func:`serve` itself.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from fake_registry import cli_arguments as parse
from fake_registry.clock import OffsetClock
from fake_registry.command_line import PROG, TOKEN_ENV, UsageError, fail, say
from fake_registry.fake import DEFAULT_CLIENTS, FakeRegistry
from fake_registry.seed import SeedError, ServiceSeed, apply_seed, fake_services, load_seed
from fake_registry.state.auth import DEFAULT_TOKEN_TTL

if TYPE_CHECKING:
    from fake_registry.tls import TlsMaterial

__all__ = ["LOG_LEVELS", "STOP_GRACE", "add_serve_arguments", "serve"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: Seconds open calls (heartbeat streams) get to finish when the server stops.
STOP_GRACE = 0.5

log = logging.getLogger("fake_registry.cli")


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(LOG_LEVELS)} (got {text!r})")
    return level


def add_serve_arguments(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Add the serve options to ``parser``; ``defaults=False`` for the ``serve`` copies."""

    # The same options exist at top level (serve is the default command) and
    # under `serve`. The subcommand's copies default to SUPPRESS so they do not
    # overwrite values given before the command name.
    def add(flag: str, default: object, help: str, **options: Any) -> None:
        value = default if defaults else argparse.SUPPRESS
        parser.add_argument(flag, default=value, help=help, **options)

    add("--host", "127.0.0.1", "interface to bind (default: 127.0.0.1)")
    port = parse.int_in(0, 65535, "a port in 0..65535")
    add("--port", 0, "port to bind; 0 (the default) picks a free one", type=port)
    add(
        "--client",
        None,
        "accept this credential (repeatable); without any, the fake accepts demo-key:demo-secret",
        dest="clients",
        metavar="KEY:SECRET",
        type=parse.client_credential,
        action="append",
    )
    ttl_help = f"token lifetime in seconds (default: {DEFAULT_TOKEN_TTL})"
    positive = parse.int_in(1, None, "a positive integer")
    add("--token-ttl", DEFAULT_TOKEN_TTL, ttl_help, metavar="SECONDS", type=positive)
    seed_help = "preload services and instances from a .toml or .json seed file"
    add("--seed", None, seed_help, metavar="FILE")
    count = parse.int_in(0, None, "a non-negative integer")
    fake_help = "also preload N realistic services generated with faker"
    add("--fake-services", 0, fake_help, metavar="N", type=count)
    faker_help = "seed for --fake-services: the same seed gives the same data (default: 0)"
    add(
        "--faker-seed",
        None,
        faker_help,
        metavar="S",
        type=parse.int_in(-(2**63), None, "an integer"),
    )
    log_help = f"logging to stderr: {', '.join(LOG_LEVELS)} (default: WARNING)"
    add("--log-level", "WARNING", log_help, metavar="LEVEL", type=_log_level)
    flag = {"action": "store_true"}
    add("--tls", False, "serve TLS with a generated CA and server certificate", **flag)
    ca_help = "with --tls: write the CA bundle here (default: a temporary file); printed"
    add("--tls-ca-out", None, ca_help, metavar="FILE")
    add("--tls-cert", None, "serve TLS with this certificate (chain)", metavar="FILE")
    add("--tls-key", None, "the private key of --tls-cert", metavar="FILE")
    token_help = f"control service calls must carry this token (default: ${TOKEN_ENV})"
    token = os.environ.get(TOKEN_ENV) or None
    add("--control-token", token, token_help, metavar="TOKEN")
    remote_help = "allow a non-loopback --host: whoever reaches it controls the fake"
    add("--allow-remote", False, remote_help, **flag)


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


def _check_local(host: str) -> None:
    """Refuse a --host other machines can reach: anyone reaching it controls the fake."""
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, 0, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # _bind_problem reports it
    for *_, address in infos:
        ip = ipaddress.ip_address(address[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if not ip.is_loopback:
            shown = host or "''"
            raise UsageError(
                f"--host {shown} is not a loopback address: other machines could reach the "
                "fake and its control service; pass --allow-remote to serve anyway"
            )


def _tls(args: argparse.Namespace) -> TlsMaterial | None:
    """The certificates to serve: generated (--tls), loaded and checked, or none."""
    if args.tls and (args.tls_cert or args.tls_key):
        raise UsageError("give --tls (generate) or --tls-cert/--tls-key (load), not both")
    if args.tls_ca_out and not args.tls:
        raise UsageError("--tls-ca-out needs --tls")
    if bool(args.tls_cert) != bool(args.tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    from fake_registry import tls  # cryptography loads only when used

    if args.tls:  # valid for the loopback names and --host (unless a wildcard)
        bare = args.host.strip("[]")
        with contextlib.suppress(ValueError):
            bare = "" if ipaddress.ip_address(bare).is_unspecified else bare
        extra = (bare,) if bare and bare not in tls.DEFAULT_HOSTS else ()
        return tls.generate_tls((*tls.DEFAULT_HOSTS, *extra))
    if not args.tls_cert:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        material = tls.load_tls(args.tls_cert, args.tls_key)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        cert = x509.load_pem_x509_certificates(material.cert_pem)[0]
    except ValueError:
        raise UsageError(f"TLS cert file {args.tls_cert} holds no valid certificate") from None
    try:
        key = serialization.load_pem_private_key(material.key_pem, password=None)
    except (TypeError, ValueError):
        raise UsageError(f"TLS key file {args.tls_key}: not an unencrypted private key") from None
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise UsageError(f"TLS key file {args.tls_key} does not match {args.tls_cert}")
    return material


def _write_ca(material: TlsMaterial, path: str | None, cleanup: contextlib.ExitStack) -> str:
    """Write the CA bundle clients trust to ``path``, or a temporary file removed at exit."""
    try:
        if path is None:
            handle, path = tempfile.mkstemp(prefix="fake-registry-ca-", suffix=".pem")
            os.close(handle)
            cleanup.callback(Path(path).unlink, missing_ok=True)
        return str(material.write_ca(path))
    except OSError as exc:
        raise UsageError(f"--tls-ca-out {path}: cannot write: {exc.strerror}") from None


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
    with _StopSignals() as stop, contextlib.ExitStack() as cleanup:
        clients = _clients(args)
        sources = _seed_data(args)
        if not args.allow_remote:
            _check_local(args.host)
        tls = _tls(args)
        host = _grpc_host(args.host)
        problem = _bind_problem(host, args.port)
        if problem:
            return fail(problem, 1)
        fake = FakeRegistry(
            clients=clients,
            token_ttl=args.token_ttl,
            clock=OffsetClock(),
            host=host,
            port=args.port,
            control_token=args.control_token or None,
            tls=tls,
        )
        counts = []
        for label, prefix, services in sources:
            try:
                counts.append((label, apply_seed(fake, services)))
            except SeedError as exc:
                raise UsageError(f"{prefix}: {exc}") from None
        ca_file = _write_ca(tls, args.tls_ca_out, cleanup) if args.tls and tls else None
        try:
            fake.start()
        except (OSError, RuntimeError) as exc:
            return fail(f"cannot listen on {host}:{args.port}: {exc}", 1)
        try:
            say(f"listening on {fake.address}")
            if ca_file:
                say(f"tls ca bundle {ca_file}")
            elif tls:
                say(f"tls certificate {args.tls_cert}")
            if args.control_token:
                say("control token required")
            if clients is None:
                for key, secret in DEFAULT_CLIENTS.items():
                    say(f"client {key} (the default; secret: {secret})")
            else:
                for key in clients:
                    say(f"client {key} (secret as given)")
            say(f"token ttl {args.token_ttl} s")
            for label, count in counts:
                say(f"seeded {count.services} services, {count.instances} instances ({label})")
            say("stop with Ctrl+C or SIGTERM")
            log.info("serving on %s", fake.address)
            stop.event.wait()
            log.info("%s received, stopping", stop.received)
        finally:
            fake.stop(STOP_GRACE)
    return 0
