"""Failable backends (fake_registry/backends.py) over real loopback gRPC."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fake_registry import FakeRegistry, ManualClock
from fake_registry.backends import ECHO_SERVICE, Backend, start_backends
from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
from protos.registry.v1 import registry_pb2, registry_pb2_grpc

Metadata = tuple[tuple[str, str], ...]
Status = health_pb2.HealthCheckResponse.ServingStatus
ROOT = Path(__file__).resolve().parents[2]
# grpcio shares subchannels process-wide: without this, a fresh channel to a
# refused-then-recovered address would inherit the old one's reconnect backoff.
LOCAL_POOL = [("grpc.use_local_subchannel_pool", 1)]


def echo(address: str, message: str = "hi", timeout: float = 5.0) -> echo_pb2.EchoResponse:
    """One Echo call on a fresh channel."""
    with grpc.insecure_channel(address, options=LOCAL_POOL) as channel:
        stub = echo_pb2_grpc.EchoServiceStub(channel)
        return stub.Echo(echo_pb2.EchoRequest(message=message), timeout=timeout)


def echo_error(address: str, timeout: float = 5.0) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        echo(address, timeout=timeout)
    return info.value


def health(address: str, service: str = "") -> Status:
    with grpc.insecure_channel(address, options=LOCAL_POOL) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def list_instances(
    stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata, project: str, name: str
) -> list[registry_pb2.Instance]:
    reply = stub.ListServices(
        registry_pb2.ListServicesRequest(project=project, env="dev"), metadata=md, timeout=5
    )
    (service,) = [s for s in reply.services if s.service.name == name]
    return sorted(service.instances, key=lambda i: i.instance_key)


@pytest.fixture
def backend() -> Iterator[Backend]:
    with Backend("solo") as b:
        yield b


def test_pool_registers_each_backend_as_an_instance(
    fake: FakeRegistry, registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata
) -> None:
    with start_backends(fake, 3, project="shop", name="cart") as pool:
        instances = list_instances(registry_stub, md, "shop", "cart")
        assert [i.instance_key for i in instances] == ["cart-0", "cart-1", "cart-2"]
        for instance in instances:
            b = pool[instance.instance_key]
            assert instance.service_id == pool.service_id
            assert (instance.host, instance.grpc_port) == ("127.0.0.1", b.port)
            assert instance.endpoint == b.address
            assert json.loads(instance.endpoints_json) == [
                {"host": "127.0.0.1", "network": "local", "priority": 0}
            ]
        assert pool[1] is pool["cart-1"]
        assert len({b.port for b in pool}) == len(pool) == 3
        with pytest.raises(KeyError):
            pool["cart-3"]


def test_each_backend_answers_with_its_own_key_and_count(fake: FakeRegistry) -> None:
    with start_backends(fake, 3) as pool:
        for b in pool.backends:
            first, second = echo(b.address, "ping"), echo(b.address, "pong")
            assert (first.message, first.instance_key, first.served) == ("ping", b.instance_key, 1)
            assert (second.message, second.served) == ("pong", 2)
            assert b.calls == b.received == 2
            assert health(b.address) == health(b.address, ECHO_SERVICE) == Status.SERVING


@pytest.mark.parametrize(
    ("code", "serving", "status"),
    [
        (grpc.StatusCode.UNAVAILABLE, None, Status.NOT_SERVING),
        (grpc.StatusCode.INTERNAL, None, Status.SERVING),
        (grpc.StatusCode.INTERNAL, False, Status.NOT_SERVING),
    ],
)
def test_fail_answers_the_code_while_the_others_keep_answering(
    fake: FakeRegistry, code: grpc.StatusCode, serving: bool | None, status: Status
) -> None:
    with start_backends(fake, 3) as pool:
        pool["echo-1"].fail(code, "boom", serving=serving)
        err = echo_error(pool["echo-1"].address)
        assert (err.code(), err.details()) == (code, "boom")
        assert health(pool["echo-1"].address) == health(pool[1].address, ECHO_SERVICE) == status
        assert (pool["echo-1"].received, pool["echo-1"].calls) == (1, 0)
        for b in (pool[0], pool[2]):
            assert echo(b.address).instance_key == b.instance_key
            assert health(b.address) == Status.SERVING
        pool["echo-1"].recover()
        assert echo(pool["echo-1"].address).served == 1
        assert health(pool["echo-1"].address) == Status.SERVING


def test_fail_refuses_ok(backend: Backend) -> None:
    with pytest.raises(ValueError, match="recover"):
        backend.fail(grpc.StatusCode.OK)


def test_hang_makes_the_caller_hit_its_deadline(backend: Backend) -> None:
    backend.hang()
    assert echo_error(backend.address, timeout=0.3).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert health(backend.address) == Status.SERVING  # a stuck handler, a live process
    backend.recover()
    assert echo(backend.address).instance_key == "solo"


@pytest.mark.parametrize(
    ("control", "code"),
    [("fail", grpc.StatusCode.UNAVAILABLE), ("recover", grpc.StatusCode.OK)],
)
def test_a_mode_change_releases_hung_calls(
    backend: Backend, control: str, code: grpc.StatusCode
) -> None:
    backend.hang()
    with grpc.insecure_channel(backend.address, options=LOCAL_POOL) as channel:
        future = echo_pb2_grpc.EchoServiceStub(channel).Echo.future(
            echo_pb2.EchoRequest(message="late"), timeout=30
        )
        backend.wait_received(1)
        getattr(backend, control)()
        assert future.code() is code  # blocks until the call ends
        if code is grpc.StatusCode.OK:
            assert future.result().message == "late"


def test_refuse_gives_connection_refused_until_recover_on_the_same_port(
    fake: FakeRegistry, registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata
) -> None:
    with start_backends(fake, 2) as pool:
        b = pool[0]
        address, port = b.address, b.port
        echo(address)
        b.refuse()
        assert not b.listening
        refused = echo_error(address)
        assert refused.code() is grpc.StatusCode.UNAVAILABLE
        assert "connection refused" in refused.details().lower()
        assert echo(pool[1].address).instance_key == "echo-1"
        b.recover()
        assert (b.address, b.port) == (address, port)
        reply = echo(address)
        assert (reply.instance_key, reply.served) == ("echo-0", 2)  # counts survive a restart
        registered = list_instances(registry_stub, md, "demo", "echo")[0]
        assert (registered.endpoint, registered.grpc_port) == (address, port)


@pytest.mark.parametrize("control", ["refuse", "stop"])
def test_refuse_and_stop_release_hung_calls(backend: Backend, control: str) -> None:
    backend.hang()
    with grpc.insecure_channel(backend.address, options=LOCAL_POOL) as channel:
        future = echo_pb2_grpc.EchoServiceStub(channel).Echo.future(
            echo_pb2.EchoRequest(), timeout=30
        )
        backend.wait_received(1)
        getattr(backend, control)()
        # The server aborts open calls with a GOAWAY: UNAVAILABLE, well before the deadline.
        assert future.code() is grpc.StatusCode.UNAVAILABLE


def test_a_stopped_backend_restarts_on_its_port(backend: Backend) -> None:
    address = backend.address
    backend.stop()
    backend.stop()  # idempotent
    assert echo_error(address).code() is grpc.StatusCode.UNAVAILABLE
    backend.start()
    assert echo(address).served == 1
    with pytest.raises(RuntimeError, match="already listening"):
        backend.start()


def test_wait_received_times_out(backend: Backend) -> None:
    backend.wait_received(0)
    with pytest.raises(TimeoutError, match="0 of 1 Echo calls"):
        backend.wait_received(1, timeout=0.01)


def test_leaving_the_pool_stops_every_server_and_keeps_the_instances(
    fake: FakeRegistry,
) -> None:
    with start_backends(fake, 3) as pool:
        addresses = [b.address for b in pool]
    for address in addresses:
        assert echo_error(address).code() is grpc.StatusCode.UNAVAILABLE
    assert [i.endpoint for i in fake.instances(pool.service_id)] == addresses


def test_register_renews_leases_on_the_fakes_clock(fake: FakeRegistry, clock: ManualClock) -> None:
    with start_backends(fake, 2, ttl_seconds=30, meta={"zone": "a"}) as pool:
        clock.advance(31)
        assert fake.instances(pool.service_id, online=True) == []
        records = pool.register()
        assert [r.instance_key for r in records] == ["echo-0", "echo-1"]
        assert all(r.meta == {"zone": "a"} for r in records)
        assert len(fake.instances(pool.service_id, online=True)) == 2


def test_an_empty_pool_ensures_the_service_only(fake: FakeRegistry) -> None:
    with start_backends(fake, 0, name="nobody") as pool:
        assert pool.backends == []
        assert fake.instances(pool.service_id) == []
    with pytest.raises(ValueError, match="n must be"):
        start_backends(fake, -1)


def test_the_documented_example_runs() -> None:
    text = (ROOT / "docs" / "backends.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"^```python\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    exec(compile(block, "docs/backends.md", "exec"), {})  # noqa: S102
