"""Fixtures for the black-box contract tests of the fake (CONTRACT sections 1-3).

Everything here talks to the fake over loopback gRPC through the generated
stubs. The only private access is reading the fake's single configured
credential, so the tests need not repeat the root conftest's constants.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import grpc
import pytest

from fake_registry import FakeRegistry
from fake_registry.state.auth import Credential
from protos.registry.v1 import registry_pb2, registry_pb2_grpc

Metadata = tuple[tuple[str, str], ...]


class HeartbeatSession:
    """One open ``HeartbeatStream``, driven one request at a time.

    Requests go through a queue, so a test can interleave writes and reads on
    the same stream exactly as a long-lived client does.
    """

    def __init__(
        self, stub: registry_pb2_grpc.RegistryServiceStub, metadata: Metadata | None
    ) -> None:
        self._requests: queue.SimpleQueue[registry_pb2.HeartbeatRequest | None] = (
            queue.SimpleQueue()
        )
        self.call = stub.HeartbeatStream(
            iter(self._requests.get, None), metadata=metadata, timeout=5
        )

    def send(self, service_id: int, instance_key: str) -> None:
        self._requests.put(
            registry_pb2.HeartbeatRequest(service_id=service_id, instance_key=instance_key)
        )

    def read(self) -> int:
        """The next response's ``expires_at`` (raises ``grpc.RpcError`` on a failed stream)."""
        return next(self.call).expires_at

    def beat(self, service_id: int, instance_key: str) -> int:
        self.send(service_id, instance_key)
        return self.read()

    def close(self) -> grpc.StatusCode:
        """Half-close, check that no response is left over, return the final status."""
        self._requests.put(None)
        leftover = [r.expires_at for r in self.call]
        assert leftover == [], f"responses nobody asked for: {leftover}"
        return self.call.code()

    def cancel(self) -> None:
        self._requests.put(None)  # unblocks grpc's request-consuming thread
        self.call.cancel()


OpenHeartbeat = Callable[[Metadata | None], HeartbeatSession]


@pytest.fixture
def open_heartbeat(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
) -> Iterator[OpenHeartbeat]:
    """Open heartbeat streams (with the given metadata); all are cancelled at teardown."""
    sessions: list[HeartbeatSession] = []

    def open_(metadata: Metadata | None) -> HeartbeatSession:
        session = HeartbeatSession(registry_stub, metadata)
        sessions.append(session)
        return session

    yield open_
    for session in sessions:
        session.cancel()


@pytest.fixture
def credential(fake: FakeRegistry) -> Credential:
    """The one credential the shared ``fake`` fixture is configured with."""
    with fake._world.lock:  # private: our own tests may read the fake's state
        (only,) = fake._world.auth.credentials.values()
    return only


@pytest.fixture
def service(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata
) -> registry_pb2.Service:
    """A service created through EnsureService."""
    reply = registry_stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project="shop", name="cart"), metadata=md, timeout=5
    )
    assert reply.created
    return reply.service
