"""sdk.aio.AsyncClient: construction, close (G9), hooks, disabled auth, reprs, the loop rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import Config, SystemClock
from sdk.aio import AsyncAuth, AsyncClient
from sdk.errors import Cancelled, ClientClosed, RegistryError
from tests.conftest import CLIENT_KEY, CLIENT_SECRET

pytestmark = pytest.mark.asyncio


def _config(fake: FakeRegistry, **changes: object) -> Config:
    return Config(fake.address, CLIENT_KEY, CLIENT_SECRET, **changes)  # type: ignore[arg-type]


async def _list(channel: grpc.aio.Channel) -> registry_pb2.ListServicesResponse:
    stub = registry_pb2_grpc.RegistryServiceStub(channel)
    reply: registry_pb2.ListServicesResponse = await stub.ListServices(
        registry_pb2.ListServicesRequest(env="dev")
    )
    return reply


@pytest_asyncio.fixture
async def client(fake: FakeRegistry, clock: ManualClock) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(_config(fake), clock=clock) as c:
        yield c


async def test_construction_makes_no_call(fake: FakeRegistry, clock: ManualClock) -> None:
    async with AsyncClient(_config(fake), clock=clock) as client:
        assert isinstance(client.auth, AsyncAuth)
        assert client.clock is clock
        assert client.auth.expires_at is None
    assert fake.calls() == []


async def test_default_clock_is_the_system_clock(fake: FakeRegistry) -> None:
    async with AsyncClient(_config(fake)) as client:
        assert isinstance(client.clock, SystemClock)


async def test_made_outside_an_event_loop_is_refused(fake: FakeRegistry) -> None:
    with pytest.raises(RuntimeError, match="inside a running event loop"):
        await asyncio.to_thread(AsyncClient, _config(fake))  # a thread runs no loop


async def test_close_closes_every_channel_and_is_idempotent(client: AsyncClient) -> None:
    await _list(client.channel)
    await client.close()
    assert client.closed
    await client.close()
    with pytest.raises(ClientClosed):
        await _list(client.channel)
    client.auth.invalidate()
    with pytest.raises(ClientClosed):
        await client.auth.token()  # the auth path uses the same (closed) transport
    with pytest.raises(ClientClosed):
        await client.registry.list_services()
    assert "closed" in repr(client)


async def test_close_hooks_run_newest_first_once_before_the_channels_close(
    client: AsyncClient,
) -> None:
    order: list[str] = []

    async def deregister() -> None:
        await _list(client.channel)  # the channel is still open for hooks
        order.append("deregister")

    async def failing() -> None:
        order.append("failing")
        raise RuntimeError("boom")

    client._on_close.append(deregister)
    client._on_close.append(failing)
    await client.close()
    await client.close()
    assert order == ["failing", "deregister"]


async def test_a_cancelled_close_still_runs_every_hook_and_closes_the_channels(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    client = AsyncClient(_config(fake), clock=clock)
    entered, release = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def last_hook() -> None:  # added first: runs last
        ran.append("last")

    async def slow_hook() -> None:
        entered.set()
        await release.wait()
        ran.append("slow")

    client._on_close.append(last_hook)
    client._on_close.append(slow_hook)
    closing = asyncio.ensure_future(client.close())
    await entered.wait()
    closing.cancel()  # the caller gives up (a timeout, a shutdown) ...
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert client.closed
    release.set()
    await client.close()  # ... the close went on: a second call awaits the same one
    assert ran == ["slow", "last"]
    with pytest.raises(ClientClosed):
        await _list(client.channel)


async def test_calls_in_flight_when_the_client_closes_raise_client_closed(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    await client.auth.token()
    fake.add_fault("ListServices", drop=True)
    call = asyncio.ensure_future(client.registry.list_services(timeout=30))
    await asyncio.to_thread(fake.wait_for, lambda c: c.method.endswith("ListServices"), timeout=5)
    await client.close()
    with pytest.raises(ClientClosed):  # not a CancelledError: the caller was not cancelled
        await call
    assert not call.cancelled()


async def test_disabled_auth_sends_no_token(fake: FakeRegistry, clock: ManualClock) -> None:
    fake.set_auth_enabled(False)
    async with AsyncClient(Config(fake.address, disable_auth=True), clock=clock) as client:
        await _list(client.channel)
    (call,) = fake.calls("ListServices")
    assert all(key != "authorization" for key, _ in call.metadata)
    assert fake.authentications == 0


async def test_repr_hides_secrets(fake: FakeRegistry, client: AsyncClient) -> None:
    token = await client.auth.token()
    text = f"{client!r} {client.auth!r} {client._transport!r} {client.config!r} {client.channel!r}"
    assert CLIENT_SECRET not in text
    assert token not in text
    assert fake.address in text


async def test_a_cancelled_call_is_not_retried(fake: FakeRegistry, client: AsyncClient) -> None:
    await client.auth.token()
    fake.add_fault("ListServices", drop=True)
    call = asyncio.ensure_future(client.registry.list_services(timeout=30))
    await asyncio.to_thread(fake.wait_for, lambda c: c.method.endswith("ListServices"), timeout=5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert len(fake.calls("ListServices")) == 1


async def test_streams_wait_for_a_token_when_none_is_cached(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    # No token yet: the stream call is opened once the token arrives, on first use.
    stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
    ensured = await client.registry.ensure_service("demo", "beat")
    client.auth.invalidate()
    call = stub.HeartbeatStream()
    assert "PendingCall" in repr(call)
    await call.write(
        registry_pb2.HeartbeatRequest(service_id=ensured.service.id, instance_key="nope")
    )
    reply = await call.read()
    assert reply.expires_at == 0  # an unknown instance: answered 0 on an open stream
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK
    assert fake.authentications == 2


async def test_a_stream_whose_token_fails_raises_the_typed_error(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    config = Config(fake.address, CLIENT_KEY, "wrong-secret", default_timeout=5.0)
    async with AsyncClient(config, clock=clock) as client:
        stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
        call = stub.HeartbeatStream()
        with pytest.raises(RegistryError) as info:
            await call.read()
        assert not isinstance(info.value, Cancelled)
        assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


async def test_a_stream_whose_caller_gave_up_waiting_for_its_token_is_never_opened(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    fake.add_fault("AuthenticateClient", delay=0.3, real_time=True, times=1)
    stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
    call = stub.HeartbeatStream()  # no token yet: opens on first use
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await call.read()
    assert await client.auth.token()  # the shared refresh went on and landed
    for _ in range(3):
        await asyncio.sleep(0)  # an opening that survived would run now
    assert fake.calls("HeartbeatStream") == []
    assert call.done()
