"""client.discovery.channel() on asyncio: what only the grpc.aio channel has.

The unary scenarios shared with the sync channel (round-robin, failover, cooling, closing)
run on both flavours in test_sdk_discovery.py. Here: unary calls as coroutines under
concurrency and cancellation, the three streaming shapes (opened at once on a warm cache,
on first use otherwise), the view's own ``grpc.aio.Channel`` surface, and instances that
cannot be dialled. Streams go to small ``grpc.aio`` servers started by the test and
registered in the fake, each answering with its own name.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from fake_registry import FakeRegistry, ManualClock
from fake_registry.backends import BackendPool, start_backends
from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
from sdk import Config
from sdk.aio import AsyncClient
from sdk.aio._pending_call import PendingCall
from sdk.errors import NoInstances, ServiceNotFound, Unavailable
from tests.conftest import CLIENT_KEY, CLIENT_SECRET

pytestmark = pytest.mark.asyncio

LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
SPLIT = "/test.Streams/Split"  # unary-stream: one answer per byte of the request
JOIN = "/test.Streams/Join"  # stream-unary: the requests joined
CHAT = "/test.Streams/Chat"  # stream-stream: one answer per request


@pytest_asyncio.fixture
async def client(fake: FakeRegistry, clock: ManualClock) -> AsyncIterator[AsyncClient]:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=10.0)
    async with AsyncClient(config, clock=clock) as c:
        yield c


@pytest.fixture
def pool(fake: FakeRegistry) -> Iterator[BackendPool]:
    with start_backends(fake, 3) as p:
        yield p


def _handlers(name: bytes) -> grpc.GenericRpcHandler:
    async def split(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for byte in request:
            yield name + b":" + bytes([byte])

    async def join(requests: AsyncIterator[bytes], context: Any) -> bytes:
        return name + b":" + b"".join([r async for r in requests])

    async def chat(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield name + b":" + request

    return grpc.method_handlers_generic_handler(
        "test.Streams",
        {
            "Split": grpc.unary_stream_rpc_method_handler(split),
            "Join": grpc.stream_unary_rpc_method_handler(join),
            "Chat": grpc.stream_stream_rpc_method_handler(chat),
        },
    )


@pytest_asyncio.fixture
async def streams(fake: FakeRegistry) -> AsyncIterator[list[str]]:
    """Two stream servers, registered as ``demo/streams`` instances ``s-0`` and ``s-1``."""
    sid = fake.ensure_service("demo", "streams").id
    servers = []
    for n in range(2):
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((_handlers(f"s-{n}".encode()),))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        fake.register_instance(sid, f"s-{n}", host="127.0.0.1", grpc_port=port)
    yield ["s-0", "s-1"]
    for server in servers:
        await server.stop(None)


def _echo(client: AsyncClient, **options: Any) -> echo_pb2_grpc.EchoServiceStub:
    return echo_pb2_grpc.EchoServiceStub(client.discovery.channel("demo", "echo", **options))


def _request(message: str = "x") -> echo_pb2.EchoRequest:
    return echo_pb2.EchoRequest(message=message)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the condition did not hold in time"
        await asyncio.sleep(0.001)


# --- unary ------------------------------------------------------------------------------


async def test_concurrent_calls_on_a_cold_cache_resolve_once_and_spread(
    client: AsyncClient, fake: FakeRegistry, pool: BackendPool
) -> None:
    stub = _echo(client)
    replies = await asyncio.gather(*(stub.Echo(_request(str(n)), timeout=5) for n in range(60)))
    assert [r.message for r in replies] == [str(n) for n in range(60)]
    assert Counter(r.instance_key for r in replies) == {"echo-0": 20, "echo-1": 20, "echo-2": 20}
    assert len(fake.calls(LIST)) == 1


async def test_a_call_in_flight_to_an_instance_that_vanishes_still_completes(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    stub = _echo(client)
    pool["echo-0"].hang()
    call = asyncio.create_task(stub.Echo(_request(), timeout=5))
    await _until(lambda: pool["echo-0"].received == 1)
    fake.deregister_instance(pool.service_id, "echo-0")
    clock.advance(31)  # the cache expires: the next resolve drops echo-0 and its channel
    view = await client.discovery.resolve("demo", "echo")
    assert "echo-0" not in [i.instance_key for i in view.instances]
    pool["echo-0"].recover()  # answers the call it held
    reply = await call  # not cut off by the channel's close: it had its grace period
    assert reply.instance_key == "echo-0"
    assert await _closed_soon(client, pool["echo-0"].address)


async def _closed_soon(client: AsyncClient, address: str) -> bool:
    await _until(lambda: address not in client.discovery._channels.addresses())
    return True


async def test_a_cancelled_call_is_not_failed_over_nor_reported(
    client: AsyncClient, pool: BackendPool
) -> None:
    stub = _echo(client)
    pool["echo-0"].hang()
    call = asyncio.create_task(stub.Echo(_request(), timeout=5))
    await _until(lambda: pool["echo-0"].received == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert client.discovery.failure_records("demo", "echo") == 0
    assert (pool["echo-1"].received, pool["echo-2"].received) == (0, 0)
    assert (await stub.Echo(_request(), timeout=5)).instance_key == "echo-1"


async def test_one_attempt_only_when_max_attempts_is_1(
    client: AsyncClient, pool: BackendPool
) -> None:
    pool["echo-0"].fail(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await _echo(client, max_attempts=1).Echo(_request(), timeout=5)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE
    assert (pool["echo-1"].received, pool["echo-2"].received) == (0, 0)
    assert client.discovery.failure_records("demo", "echo") == 1


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3"])
async def test_max_attempts_must_be_a_positive_integer(client: AsyncClient, bad: Any) -> None:
    with pytest.raises(ValueError, match="max_attempts must be an integer >= 1"):
        client.discovery.channel("demo", "echo", max_attempts=bad)


async def test_an_instance_without_a_grpc_address_is_skipped_and_cooled(
    client: AsyncClient, fake: FakeRegistry, pool: BackendPool
) -> None:
    # "a-portless" sorts first; with no port its address is unknown (G13: no guess).
    fake.register_instance(pool.service_id, "a-portless", host="h", endpoint="svc.local")
    view = await client.discovery.resolve("demo", "echo")
    portless = view.instances[0]
    assert portless.instance_key == "a-portless"
    reply = await _echo(client).Echo(_request(), timeout=5)
    assert reply.instance_key == "echo-0"
    assert client.discovery.is_cooling("demo", "echo", portless)


async def test_the_view_closes_alone_and_reports_its_state(
    client: AsyncClient, pool: BackendPool
) -> None:
    async with client.discovery.channel("demo", "echo") as channel:
        assert channel.get_state() is grpc.ChannelConnectivity.IDLE
        await channel.channel_ready()  # resolves, dials nothing
        changed = asyncio.create_task(channel.wait_for_state_change(grpc.ChannelConnectivity.IDLE))
        await asyncio.sleep(0)
        assert not changed.done()
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        assert (await stub.Echo(_request(), timeout=5)).instance_key == "echo-0"
    await asyncio.wait_for(changed, 5)
    assert channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN
    with pytest.raises(ValueError, match="closed channel"):
        await stub.Echo(_request(), timeout=5)
    with pytest.raises(ValueError, match="closed channel"):
        await channel.channel_ready()
    # Only the view closed: the client's instance channels still serve other views.
    assert (await _echo(client).Echo(_request(), timeout=5)).instance_key == "echo-1"
    assert repr(channel) == "AsyncDiscoveryChannel(demo/echo, closed)"


async def test_channel_ready_raises_what_discovery_raises(client: AsyncClient) -> None:
    with pytest.raises(ServiceNotFound):
        await client.discovery.channel("demo", "nope").channel_ready()


# --- streams ----------------------------------------------------------------------------


def _split(client: AsyncClient) -> Any:
    return client.discovery.channel("demo", "streams").unary_stream(SPLIT)


async def test_a_stream_opens_on_first_use_when_the_cache_is_cold_then_at_once(
    client: AsyncClient, fake: FakeRegistry, streams: list[str]
) -> None:
    cold = _split(client)(b"ab", timeout=5)
    assert isinstance(cold, PendingCall)
    assert fake.calls(LIST) == []  # nothing happens until the call is used
    assert [m async for m in cold] == [b"s-0:a", b"s-0:b"]
    warm = _split(client)(b"cd", timeout=5)
    assert isinstance(warm, grpc.aio.UnaryStreamCall)  # the real call, opened now
    assert await warm.read() == b"s-1:c"
    assert await warm.read() == b"s-1:d"
    assert await warm.code() is grpc.StatusCode.OK
    assert len(fake.calls(LIST)) == 1


async def test_stream_unary_and_bidi_streams_go_to_one_picked_instance(
    client: AsyncClient, streams: list[str]
) -> None:
    channel = client.discovery.channel("demo", "streams")

    async def requests() -> AsyncIterator[bytes]:
        for part in (b"x", b"y", b"z"):
            yield part

    assert await channel.stream_unary(JOIN)(requests(), timeout=5) == b"s-0:xyz"
    chat = channel.stream_stream(CHAT)(timeout=5)
    await chat.write(b"hi")
    assert await chat.read() == b"s-1:hi"
    await chat.write(b"again")
    assert await chat.read() == b"s-1:again"
    await chat.done_writing()
    assert await chat.read() is grpc.aio.EOF
    assert await chat.code() is grpc.StatusCode.OK


async def test_stream_discovery_errors_are_raised_at_first_use(
    client: AsyncClient, fake: FakeRegistry, streams: list[str]
) -> None:
    fake.ensure_service("demo", "empty")
    empty = client.discovery.channel("demo", "empty").unary_stream(SPLIT)(b"a", timeout=5)
    with pytest.raises(NoInstances):
        await empty.read()
    await client.discovery.resolve("demo", "empty")  # now warm: still raised at first use
    warm_empty = client.discovery.channel("demo", "empty").unary_stream(SPLIT)(b"a", timeout=5)
    with pytest.raises(NoInstances):
        await warm_empty.read()
    portless_sid = fake.ensure_service("demo", "portless").id
    fake.register_instance(portless_sid, "p", host="h", endpoint="svc.local")
    await client.discovery.resolve("demo", "portless")
    portless = client.discovery.channel("demo", "portless").unary_stream(SPLIT)(b"a")
    with pytest.raises(Unavailable, match="has no gRPC address"):
        await portless.read()
    assert client.discovery.failure_records("demo", "portless") == 1


async def test_streams_on_a_closed_view_raise_at_first_use(
    client: AsyncClient, streams: list[str]
) -> None:
    await client.discovery.resolve("demo", "streams")
    channel = client.discovery.channel("demo", "streams")
    await channel.close()
    call = channel.unary_stream(SPLIT)(b"a", timeout=5)
    with pytest.raises(ValueError, match="closed channel"):
        await call.read()


async def test_stream_channels_close_with_the_client(
    fake: FakeRegistry, clock: ManualClock, streams: list[str]
) -> None:
    async with AsyncClient(Config(fake.address, CLIENT_KEY, CLIENT_SECRET), clock=clock) as c:
        split = _split(c)
        assert [m async for m in split(b"a", timeout=5)] == [b"s-0:a"]
        assert [m async for m in split(b"b", timeout=5)] == [b"s-1:b"]
        assert len(c.discovery._channels.addresses()) == 2
    assert c.discovery._channels.addresses() == []
    with pytest.raises(ValueError, match="closed channel"):
        await split(b"c", timeout=5).read()
