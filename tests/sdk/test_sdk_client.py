"""sdk.Client: construction, close (G9), hooks, disabled auth, reprs."""

from __future__ import annotations

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import Auth, Client, Config, SystemClock
from sdk.errors import ClientClosed
from tests.conftest import CLIENT_KEY, CLIENT_SECRET


def _config(fake: FakeRegistry, **changes: object) -> Config:
    return Config(fake.address, CLIENT_KEY, CLIENT_SECRET, **changes)  # type: ignore[arg-type]


def _list(channel: grpc.Channel) -> registry_pb2.ListServicesResponse:
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    return stub.ListServices(registry_pb2.ListServicesRequest(env="dev"))


def test_construction_makes_no_call(fake: FakeRegistry, clock: ManualClock) -> None:
    with Client(_config(fake), clock=clock) as client:
        assert isinstance(client.auth, Auth)
        assert client.clock is clock
        assert client.auth.expires_at is None
    assert fake.calls() == []


def test_default_clock_is_the_system_clock(fake: FakeRegistry) -> None:
    with Client(_config(fake)) as client:
        assert isinstance(client.clock, SystemClock)


def test_close_closes_every_channel_and_is_idempotent(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    client = Client(_config(fake), clock=clock)
    _list(client.channel)
    client.close()
    assert client.closed
    client.close()
    with pytest.raises(ClientClosed):  # not a stub on a closed channel: grpcio segfaults
        _list(client.channel)
    client.auth.invalidate()
    with pytest.raises(ClientClosed):
        client.auth.token()  # the auth path uses the same (closed) transport
    with pytest.raises(ClientClosed):
        client.registry.list_services()
    assert "closed" in repr(client)


def test_close_hooks_run_newest_first_once_before_the_channels_close(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    order: list[str] = []
    client = Client(_config(fake), clock=clock)

    def deregister() -> None:
        _list(client.channel)  # the channel is still open for hooks
        order.append("deregister")

    def failing() -> None:
        order.append("failing")
        raise RuntimeError("boom")

    client._on_close.append(deregister)
    client._on_close.append(failing)
    client.close()
    client.close()
    assert order == ["failing", "deregister"]


def test_context_manager_closes(fake: FakeRegistry, clock: ManualClock) -> None:
    with Client(_config(fake), clock=clock) as client:
        _list(client.channel)
    assert client.closed


def test_disabled_auth_sends_no_token(fake: FakeRegistry, clock: ManualClock) -> None:
    fake.set_auth_enabled(False)
    config = Config(fake.address, disable_auth=True)
    with Client(config, clock=clock) as client:
        _list(client.channel)
    (call,) = fake.calls("ListServices")
    assert all(key != "authorization" for key, _ in call.metadata)
    assert fake.authentications == 0


def test_repr_hides_secrets(fake: FakeRegistry, clock: ManualClock) -> None:
    with Client(_config(fake), clock=clock) as client:
        token = client.auth.token()
        text = f"{client!r} {client.auth!r} {client._transport!r} {client.config!r}"
    assert CLIENT_SECRET not in text
    assert token not in text
    assert fake.address in text
