"""Shared fixtures: a started fake on a manual clock, a channel, stubs and a token."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

CLIENT_KEY = "test-key"
CLIENT_SECRET = "test-secret-value"
Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeRegistry]:
    with FakeRegistry(clients={CLIENT_KEY: CLIENT_SECRET}, token_ttl=3600, clock=clock) as f:
        yield f
    errors = f.errors.take()
    assert not errors, f"unexpected errors inside the fake: {errors!r}"


@pytest.fixture
def channel(fake: FakeRegistry) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(fake.address) as ch:
        yield ch


@pytest.fixture
def auth_stub(channel: grpc.Channel) -> user_pb2_grpc.ClientAuthServiceStub:
    return user_pb2_grpc.ClientAuthServiceStub(channel)


@pytest.fixture
def registry_stub(channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture
def token(auth_stub: user_pb2_grpc.ClientAuthServiceStub) -> str:
    reply = auth_stub.AuthenticateClient(
        user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
        timeout=5,
    )
    return reply.access_token


@pytest.fixture
def md(token: str) -> Metadata:
    """Call metadata carrying the token exactly as the SDK must send it."""
    return (("authorization", f"Bearer {token}"),)


from tests.flavours import make_client  # noqa: E402, F401 (the sync/async client fixture)
