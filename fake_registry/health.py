"""``fake-registry health``: ask a running fake's gRPC health service whether it serves.

One ``grpc.health.v1.Health/Check`` call (it needs no token), the answer's
status on stdout. Exit code 0 when the fake answers ``SERVING``, 1 for any
other answer or when it cannot be reached, 2 for a bad command line. It is
what the container image's ``HEALTHCHECK`` runs, and works against anything
that serves the standard health service (like ``grpc_health_probe``).
"""

from __future__ import annotations

import argparse
from typing import Any

import grpc

from fake_registry import cli_arguments as parse
from fake_registry.command_line import PROG, fail, say, tls_ca_credentials

__all__ = ["DEFAULT_TIMEOUT", "add_health_command", "check", "run_health"]

#: Real seconds the Check call may take.
DEFAULT_TIMEOUT = 5.0


def check(
    target: str,
    *,
    service: str = "",
    credentials: grpc.ChannelCredentials | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> str:
    """The status name the health service at ``target`` answers for ``service``.

    Args:
        target: ``"host:port"``.
        service: the service name to ask about; ``""`` (the default) is the
            server as a whole.
        credentials: for a fake serving TLS; ``None`` speaks plaintext.
        timeout: deadline of the call in real seconds.

    Returns:
        ``"SERVING"``, ``"NOT_SERVING"``, ``"SERVICE_UNKNOWN"`` or ``"UNKNOWN"``.

    Raises:
        grpc.RpcError: the call failed (unreachable, deadline, unknown service).
    """
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = (
        grpc.secure_channel(target, credentials)
        if credentials is not None
        else grpc.insecure_channel(target)
    )
    with channel:
        stub: Any = health_pb2_grpc.HealthStub(channel)  # grpc_health ships no type hints
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def run_health(args: argparse.Namespace) -> int:
    """The ``health`` command: print the status, exit 0 only for ``SERVING``."""
    credentials = tls_ca_credentials(args.tls_ca, "health")
    try:
        status = check(
            args.target, service=args.service, credentials=credentials, timeout=args.timeout
        )
    except grpc.RpcError as exc:
        code, details = exc.code(), exc.details() or ""
        return fail(f"health: {code.name}: {details} (is a fake running at {args.target}?)", 1)
    except KeyboardInterrupt:
        return fail("health: interrupted", 130)
    say(status)
    return 0 if status == "SERVING" else 1


def add_health_command(commands: Any) -> None:
    """Add ``health`` to ``commands`` (the ``add_subparsers()`` object)."""
    parser = commands.add_parser(
        "health",
        help="ask a running fake's gRPC health service whether it serves",
        description="Call grpc.health.v1.Health/Check on a running fake and print the status. "
        "Exit codes: 0 SERVING, 1 any other status or unreachable, 2 bad usage.",
        epilog=f"Example: {PROG} health --target 127.0.0.1:50051",
    )
    parser.add_argument(
        "--target", metavar="HOST:PORT", type=parse.target, required=True, help="the fake"
    )
    parser.add_argument(
        "--service",
        metavar="NAME",
        default="",
        help="ask about one service (e.g. registry.v1.RegistryService); default: the server",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=None,
        help="the fake serves TLS: trust this CA bundle (e.g. from serve --tls)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=parse.positive_seconds,
        default=DEFAULT_TIMEOUT,
        help=f"deadline of the call (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.set_defaults(handler=run_health)
