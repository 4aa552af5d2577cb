"""Fixtures of the contract suite, on top of the plugin's ``fake_registry_target``.

Per test: a channel to the target, the two stubs, a token obtained with the
target's credentials, and a ``unique`` name maker. Against a shared registry
nothing may assume a clean state, so every test works in a project of its own
and the ``instances`` fixture deregisters what the test registered.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2_grpc
from pytest_plugin.contract.support import (
    HeartbeatSession,
    Instances,
    Metadata,
    OpenHeartbeat,
    authenticate,
    bearer,
    ensure,
)
from pytest_plugin.targets import Credentials, Target

#: Real seconds a test's heartbeat stream may stay open.
STREAM_TIMEOUT = 5.0


@pytest.fixture
def credentials(fake_registry_target: Target) -> Credentials:
    """The client key and secret the registry under test accepts."""
    return fake_registry_target.credentials


@pytest.fixture
def channel(fake_registry_target: Target) -> Iterator[grpc.Channel]:
    """A plaintext channel to the target's address."""
    with grpc.insecure_channel(fake_registry_target.address) as ch:
        yield ch


@pytest.fixture
def auth_stub(channel: grpc.Channel) -> user_pb2_grpc.ClientAuthServiceStub:
    return user_pb2_grpc.ClientAuthServiceStub(channel)


@pytest.fixture
def registry_stub(channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture
def token(auth_stub: user_pb2_grpc.ClientAuthServiceStub, credentials: Credentials) -> str:
    """A fresh access token for the target's credentials."""
    return authenticate(auth_stub, credentials.client_key, credentials.client_secret).access_token


@pytest.fixture
def md(token: str) -> Metadata:
    """Call metadata with the token as the SDK sends it: ``authorization: Bearer <jwt>``."""
    return bearer(token)


@pytest.fixture
def unique() -> Callable[[str], str]:
    """``unique("what")`` is a name no other test or run uses: ``contract-what-<uuid>``."""

    def make(what: str = "x") -> str:
        return f"contract-{what}-{uuid.uuid4().hex}"

    return make


@pytest.fixture
def project(unique: Callable[[str], str]) -> str:
    """A project of this test's own: filtering on it sees only this test's services."""
    return unique("p")


@pytest.fixture
def service(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata, project: str
) -> registry_pb2.Service:
    """A service created for this test (in :func:`project`)."""
    reply = ensure(registry_stub, md, project, "svc")
    assert reply.created, "a fresh project already held the service"
    return reply.service


@pytest.fixture
def instances(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    credentials: Credentials,
    md: Metadata,
) -> Iterator[Instances]:
    """Register instances through this; all of them are deregistered after the test.

    The cleanup authenticates afresh: the test may have outlived its token.
    """
    registered = Instances(registry_stub, md)
    yield registered
    fresh = authenticate(auth_stub, credentials.client_key, credentials.client_secret)
    registered.cleanup(bearer(fresh.access_token))


@pytest.fixture
def open_heartbeat(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
) -> Iterator[OpenHeartbeat]:
    """Open HeartbeatStreams with the given metadata; all are cancelled at teardown."""
    sessions: list[HeartbeatSession] = []

    def open_(metadata: Metadata | None) -> HeartbeatSession:
        session = HeartbeatSession(registry_stub, metadata, STREAM_TIMEOUT)
        sessions.append(session)
        return session

    yield open_
    for session in sessions:
        session.cancel()
