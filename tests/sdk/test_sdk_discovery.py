"""client.discovery end to end against the fake, in virtual time (CONTRACT 4.6, G10, G11).

Every scenario with a client runs on both flavours: ``sdk.Discovery`` and
``sdk.aio.AsyncDiscovery`` (``make_client``, see ``tests/flavours.py``); the sync-only
extras of ``grpc.Channel`` (``with_call``, ``future``) run on ``sdk.Client``. What only
asyncio has is in ``tests/sdk_aio/test_aio_discovery*.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from fake_registry.backends import BackendPool, start_backends
from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
from sdk import Client, Config, DiscoveryPolicy
from sdk.errors import (
    ClientClosed,
    NoHealthyInstances,
    NoInstances,
    NotFound,
    ServiceNotFound,
    Unavailable,
)
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import MakeClient

LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"


@pytest.fixture
def client(fake: FakeRegistry, clock: ManualClock, make_client: MakeClient) -> Client:
    """A sync or async client (closed by ``make_client`` at teardown)."""
    return make_client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET), clock)  # type: ignore[no-any-return]


@pytest.fixture
def sync_client(fake: FakeRegistry, clock: ManualClock) -> Iterator[Client]:
    with Client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET), clock=clock) as c:
        yield c


@pytest.fixture
def pool(fake: FakeRegistry) -> Iterator[BackendPool]:
    with start_backends(fake, 3) as p:
        yield p


def _keys(client: Client, n: int) -> list[str]:
    return [client.discovery.pick("demo", "echo").instance.instance_key for _ in range(n)]


def test_resolve_is_cached_for_30_seconds(
    client: Client, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    view = client.discovery.resolve("demo", "echo")
    assert [i.instance_key for i in view.instances] == ["echo-0", "echo-1", "echo-2"]
    clock.advance(29)
    assert client.discovery.resolve("demo", "echo") is view
    assert len(fake.calls(LIST)) == 1
    clock.advance(2)
    client.discovery.resolve("demo", "echo")
    assert len(fake.calls(LIST)) == 2
    assert fake.calls(LIST)[0].request.env == "dev"  # type: ignore[attr-defined]


def test_one_refresh_in_flight_for_concurrent_resolvers(
    client: Client, fake: FakeRegistry, pool: BackendPool
) -> None:
    client.auth.token()  # keep authentication out of the race
    fake.add_fault("ListServices", delay=0.3, real_time=True, times=1)
    barrier = threading.Barrier(10)
    results: list[object] = []

    def resolve() -> None:
        barrier.wait(timeout=5)
        results.append(client.discovery.resolve("demo", "echo"))

    threads = [threading.Thread(target=resolve) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 10
    assert all(r is results[0] for r in results)
    assert len(fake.calls(LIST)) == 1


def test_stale_entry_served_within_max_stale_then_error(
    client: Client, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    view = client.discovery.resolve("demo", "echo")
    clock.advance(31)
    fake.fail_next("ListServices", "UNAVAILABLE")
    assert client.discovery.resolve("demo", "echo") is view  # G11: stale beats an error
    assert client.discovery.pick("demo", "echo").instance in view.instances
    clock.advance(30 + 300)  # past ttl + max_stale
    fake.fail_next("ListServices", "UNAVAILABLE")
    with pytest.raises(Unavailable):
        client.discovery.resolve("demo", "echo")


def test_max_stale_zero_never_serves_stale(
    fake: FakeRegistry, clock: ManualClock, pool: BackendPool, make_client: MakeClient
) -> None:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, discovery=DiscoveryPolicy(max_stale=0))
    with make_client(config, clock) as client:
        client.discovery.resolve("demo", "echo")
        clock.advance(31)
        fake.fail_next("ListServices", "UNAVAILABLE")
        with pytest.raises(Unavailable):
            client.discovery.resolve("demo", "echo")


def test_a_closed_client_serves_no_stale_entry(
    client: Client, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    view = client.discovery.resolve("demo", "echo")
    client.close()
    assert client.discovery.resolve("demo", "echo") is view  # fresh: no IO needed
    clock.advance(31)  # stale: a refresh cut short by the close is no registry outage
    with pytest.raises(ClientClosed):
        client.discovery.resolve("demo", "echo")
    with pytest.raises(ClientClosed):  # nothing was remembered
        client.discovery.resolve("demo", "echo")
    assert len(fake.calls(LIST)) == 1


def test_round_robin_survives_refreshes(
    client: Client, clock: ManualClock, pool: BackendPool
) -> None:
    assert _keys(client, 2) == ["echo-0", "echo-1"]
    clock.advance(31)
    assert _keys(client, 2) == ["echo-2", "echo-0"]  # not reset to 0 (G11)


def test_failure_cools_down_and_success_clears(
    client: Client, clock: ManualClock, pool: BackendPool
) -> None:
    first = client.discovery.pick("demo", "echo")
    first.failed(RuntimeError("boom"))
    assert client.discovery.is_cooling("demo", "echo", first.instance)
    assert "echo-0" not in _keys(client, 4)
    clock.advance(30)  # cooldown over (the cache refreshes too; leases still valid)
    pool.register()
    assert "echo-0" in _keys(client, 3)
    again = client.discovery.pick("demo", "echo")
    again.report(RuntimeError("x"))
    again.report(None)  # success clears the record at once (G10)
    assert not client.discovery.is_cooling("demo", "echo", again.instance)
    assert client.discovery.failure_records("demo", "echo") == 0


def test_vanished_instances_are_pruned(
    client: Client, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    pick = client.discovery.pick("demo", "echo")
    pick.failed()
    assert client.discovery.failure_records("demo", "echo") == 1
    fake.deregister_instance(pool.service_id, pick.instance.instance_key)
    clock.advance(31)
    view = client.discovery.resolve("demo", "echo")
    assert pick.instance.instance_key not in {i.instance_key for i in view.instances}
    assert client.discovery.failure_records("demo", "echo") == 0


def test_discovery_errors_are_typed(client: Client, fake: FakeRegistry) -> None:
    with pytest.raises(ServiceNotFound) as missing:
        client.discovery.pick("demo", "nope")
    assert isinstance(missing.value, NotFound)
    assert missing.value.env == "dev"
    fake.ensure_service("demo", "empty")
    with pytest.raises(NoInstances):
        client.discovery.pick("demo", "empty")
    sid = fake.ensure_service("demo", "one").id
    fake.register_instance(sid, "only", host="127.0.0.1", grpc_port=1)
    client.discovery.pick("demo", "one").failed()
    with pytest.raises(NoHealthyInstances) as cooling:
        client.discovery.pick("demo", "one")
    assert cooling.value.cooling_down == 1


def _echo(client: Client) -> echo_pb2_grpc.EchoServiceStub:
    return echo_pb2_grpc.EchoServiceStub(client.discovery.channel("demo", "echo"))


def test_channel_round_robins_over_backends(client: Client, pool: BackendPool) -> None:
    stub = _echo(client)
    answers = [stub.Echo(echo_pb2.EchoRequest(message="hi"), timeout=5) for _ in range(6)]
    assert [a.instance_key for a in answers] == ["echo-0", "echo-1", "echo-2"] * 2
    assert all(a.message == "hi" for a in answers)


def test_channel_with_call_answers_with_the_call(sync_client: Client, pool: BackendPool) -> None:
    reply, call = _echo(sync_client).Echo.with_call(echo_pb2.EchoRequest(message="w"), timeout=5)
    assert reply.message == "w"
    assert call.code() is grpc.StatusCode.OK


@pytest.mark.parametrize("breakage", ["fail", "refuse"])
def test_channel_fails_over_on_unavailable(
    client: Client, pool: BackendPool, breakage: str
) -> None:
    stub = _echo(client)
    broken = pool["echo-1"]
    stub.Echo(echo_pb2.EchoRequest(message="warm"), timeout=5)  # echo-0
    if breakage == "fail":
        broken.fail(grpc.StatusCode.UNAVAILABLE)
    else:
        broken.refuse()
    answers = [stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5) for _ in range(6)]
    assert {a.instance_key for a in answers} == {"echo-0", "echo-2"}
    view = client.discovery.resolve("demo", "echo")
    (instance,) = [i for i in view.instances if i.instance_key == "echo-1"]
    assert client.discovery.is_cooling("demo", "echo", instance)


def test_channel_raises_application_errors_without_cooling(
    client: Client, pool: BackendPool
) -> None:
    for backend in pool:
        backend.fail(grpc.StatusCode.INTERNAL)
    with pytest.raises(grpc.RpcError) as exc:
        _echo(client).Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
    assert exc.value.code() is grpc.StatusCode.INTERNAL  # type: ignore[attr-defined]
    assert client.discovery.failure_records("demo", "echo") == 0


def test_channel_every_backend_down_raises_the_call_error(
    client: Client, pool: BackendPool
) -> None:
    for backend in pool:
        backend.fail(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(grpc.RpcError) as exc:
        _echo(client).Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
    assert exc.value.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    with pytest.raises(NoHealthyInstances):
        _echo(client).Echo(echo_pb2.EchoRequest(message="x"), timeout=5)


def test_instance_channels_close_when_instances_vanish_and_on_client_close(
    client: Client, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    stub = _echo(client)
    for _ in range(3):
        stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
    channels = client.discovery._channels
    assert channels.addresses() == sorted(b.address for b in pool)
    fake.deregister_instance(pool.service_id, "echo-2")
    clock.advance(31)
    stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
    assert pool["echo-2"].address not in channels.addresses()
    client.close()
    assert channels.addresses() == []
    with pytest.raises(ValueError, match="closed channel"):
        stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)


def test_channel_hung_instance_times_out_and_cools_down(client: Client, pool: BackendPool) -> None:
    stub = _echo(client)
    pool["echo-0"].hang()
    with pytest.raises(grpc.RpcError) as exc:
        stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=0.3)
    assert exc.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
    view = client.discovery.resolve("demo", "echo")
    assert client.discovery.is_cooling("demo", "echo", view.instances[0])
    assert stub.Echo(echo_pb2.EchoRequest(message="y"), timeout=5).instance_key == "echo-1"


def test_channel_future_reports_its_outcome(sync_client: Client, pool: BackendPool) -> None:
    client = sync_client
    stub = _echo(client)
    pool["echo-0"].fail(grpc.StatusCode.UNAVAILABLE)
    future = stub.Echo.future(echo_pb2.EchoRequest(message="f"), timeout=5)
    reported = threading.Event()  # callbacks run in order: the SDK's report comes first
    future.add_done_callback(lambda _f: reported.set())
    with pytest.raises(grpc.RpcError):
        future.result(timeout=5)
    assert reported.wait(timeout=5)
    assert client.discovery.failure_records("demo", "echo") == 1
    reply = stub.Echo.future(echo_pb2.EchoRequest(message="g"), timeout=5).result(timeout=5)
    assert reply.instance_key == "echo-1"
