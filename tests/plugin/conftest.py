"""Shared helpers for the plugin's own tests: inner pytest runs through ``pytester``.

Every test here writes test modules into a fresh directory and runs pytest on
them, with the installed plugin loaded by its ``pytest11`` entry point, as a
downstream project would. The inner runs get an ini of their own (pytester
does not inherit ours): strict markers and config, warnings as errors, no
cache. In-process runs (``runpytest``) are the default for speed; a
subprocess (``runpytest_subprocess``) is used where the inner run must not
share this process (xdist, a missing extra).

Each test module declares ``pytest_plugins = ["pytester"]`` itself: pytest
refuses ``pytest_plugins`` in a conftest below the top level. Helpers are
fixtures, as test modules cannot import this conftest reliably.
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import faker  # noqa: F401 - see below
import grpc
import pytest

import fake_registry.backends
import fake_registry.control_client
import fake_registry.seed  # noqa: F401
from fake_registry import FakeRegistry, ManualClock
from protos.user.v1 import user_pb2, user_pb2_grpc

# In-process inner runs drop the modules they imported when they end, so every
# run would import faker (~0.5 s) and the harness again: imported here, they stay.

#: What the "external" registries started by these tests accept (test modules
#: spell them out: they cannot import this conftest).
EXT_KEY, EXT_SECRET = "ext-key", "ext-secret"

_ENV = (
    "FAKE_REGISTRY_CLIENT_KEY",
    "FAKE_REGISTRY_CLIENT_SECRET",
    "FAKE_REGISTRY_CONTROL_TOKEN",
)


IniWriter = Callable[..., None]


def write_ini(pytester: pytest.Pytester, *lines: str, asyncio: bool = True) -> None:
    """The inner run's ini: strict, warnings are errors, plus ``lines``.

    ``asyncio=False`` leaves out pytest-asyncio's key (for ``-p no:asyncio``
    runs, where ``--strict-config`` would reject it).
    """
    body = [
        "[pytest]",
        # hypothesis's plugin imports hypothesis (~1 s) at the end of every run.
        "addopts = -p no:cacheprovider -p no:hypothesispytest --strict-markers --strict-config",
        "filterwarnings = error",
    ]
    if asyncio:
        body.append("asyncio_default_fixture_loop_scope = function")
    pytester.makeini("\n".join([*body, *lines]) + "\n")


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """``pytester`` with the default inner ini and no FAKE_REGISTRY_* variables."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    write_ini(pytester)
    return pytester


@pytest.fixture
def ini(pytester: pytest.Pytester) -> IniWriter:
    """``ini(*lines, asyncio=True)`` rewrites the inner ini with extra lines."""
    return functools.partial(write_ini, pytester)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture
def read_json() -> Callable[[Path], Any]:
    """``read_json(path)``: what an inner test wrote for the outer one."""
    return _read_json


def _refuses(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture
def refuses() -> Callable[[str], bool]:
    """``refuses("host:port")``: whether nothing listens there any more."""
    return _refuses


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def outer_fake() -> Iterator[Callable[..., FakeRegistry]]:
    """Start fakes for inner runs to dial as ``HOST:PORT``: ``outer_fake(**FakeRegistry args)``.

    They accept ``EXT_KEY``/``EXT_SECRET`` unless told otherwise; all are
    stopped after the test.
    """
    started: list[FakeRegistry] = []

    def start(**options: Any) -> FakeRegistry:
        options.setdefault("clients", {EXT_KEY: EXT_SECRET})
        options.setdefault("clock", ManualClock())
        fake = FakeRegistry(**options).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()
        errors = fake.errors.take()
        assert not errors, f"unexpected errors inside the outer fake: {errors!r}"


class _AuthOnly(user_pb2_grpc.ClientAuthServiceServicer):
    """A stand-in for a real registry: it logs clients in and has no control service."""

    def AuthenticateClient(
        self, request: user_pb2.AuthenticateClientRequest, context: grpc.ServicerContext
    ) -> user_pb2.AuthenticateClientResponse:
        if (request.client_key, request.client_secret) != (EXT_KEY, EXT_SECRET):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad credentials")
        return user_pb2.AuthenticateClientResponse(
            access_token="real-registry-token", expires_at=4_000_000_000, token_type="Bearer"
        )


@pytest.fixture
def real_registry() -> Iterator[str]:
    """``host:port`` of a gRPC server without the fake's control service (a "real" registry).

    It serves ClientAuthService only; every other call, the control service's
    included, answers UNIMPLEMENTED, as a real registry answers the control
    service.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    user_pb2_grpc.add_ClientAuthServiceServicer_to_server(_AuthOnly(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None).wait(5)
