"""Registry channels over loopback gRPC: targets, failover, TLS, deadlines, the token.

Scenarios with a client run on both flavours (``make_client``): ``sdk._grpc`` and
``sdk.aio._channel``.
"""

from __future__ import annotations

import time

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import Client, Config, TlsConfig, Unavailable
from sdk._grpc.channel import plan_target
from sdk._grpc.failover import FailoverChannel
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import MakeClient

ROUND_ROBIN = (("grpc.lb_policy_name", "round_robin"),)


def _list(client: Client, timeout: float | None = None) -> registry_pb2.ListServicesResponse:
    stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
    return stub.ListServices(registry_pb2.ListServicesRequest(env="dev"), timeout=timeout)


@pytest.mark.parametrize(
    ("addresses", "targets", "options"),
    [
        (("reg:9000",), ("reg:9000",), ()),
        (("10.0.0.1:1", "10.0.0.2:2"), ("ipv4:10.0.0.1:1,10.0.0.2:2",), ROUND_ROBIN),
        (("[::1]:1", "[fe80::2]:2"), ("ipv6:[::1]:1,[fe80::2]:2",), ROUND_ROBIN),
        (("a:1", "b:2"), ("a:1", "b:2"), ()),
        (("10.0.0.1:1", "[::1]:2"), ("10.0.0.1:1", "[::1]:2"), ()),  # mixed: failover
        (("10.0.0.1:1", "reg:2"), ("10.0.0.1:1", "reg:2"), ()),
    ],
)
def test_plan_target(
    addresses: tuple[str, ...], targets: tuple[str, ...], options: tuple[object, ...]
) -> None:
    plan = plan_target(addresses)
    assert plan.targets == targets
    assert plan.options == options
    assert plan.failover == (len(targets) > 1)


def test_plan_target_needs_an_address() -> None:
    with pytest.raises(ValueError, match="no registry address"):
        plan_target(())


def test_default_deadline_applies_to_calls_without_one(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=0.3)
    fake.add_fault("ListServices", drop=True)
    with make_client(config, clock) as client:
        client.auth.token()
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            _list(client)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        assert time.monotonic() - start < 3.0


def test_explicit_deadline_wins(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=30.0)
    fake.add_fault("ListServices", drop=True)
    with make_client(config, clock) as client:
        with pytest.raises(grpc.RpcError) as info:
            _list(client, timeout=0.3)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]


def test_token_sent_as_exact_bearer_metadata(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    with make_client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET), clock) as client:
        token = client.auth.token()
        _list(client)
    (call,) = fake.calls("ListServices")
    assert [v for k, v in call.metadata if k == "authorization"] == [f"Bearer {token}"]


def test_failover_to_the_second_node(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    with fake.add_node() as second:
        # Host names, not IP literals: one channel per address with failover.
        addrs = f"localhost:{fake.port},localhost:{second.port}"
        config = Config(addrs, CLIENT_KEY, CLIENT_SECRET, default_timeout=5.0)
        with make_client(config, clock) as client:
            _list(client)
            fake.stop()
            for _ in range(3):
                _list(client)
            assert len(second.calls("ListServices")) == 3
            channel = client._transport.channel  # FailoverChannel / AioFailoverChannel
            assert channel.current == 1


def test_round_robin_over_ip_literals(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    with fake.add_node() as second:
        config = Config(f"{fake.address},{second.address}", CLIENT_KEY, CLIENT_SECRET)
        with make_client(config, clock) as client:
            assert client._transport.plan.targets[0].startswith("ipv4:")
            for _ in range(4):
                _list(client)
        # round_robin spreads calls over both nodes
        assert fake.calls("ListServices")
        assert second.calls("ListServices")


def test_tls(clock: ManualClock, make_client: MakeClient) -> None:
    with FakeRegistry(clients={CLIENT_KEY: CLIENT_SECRET}, clock=clock, tls=True) as fake:
        assert fake.tls is not None
        config = Config(
            fake.address, CLIENT_KEY, CLIENT_SECRET, tls=TlsConfig(ca_pem=fake.tls.ca_pem)
        )
        with make_client(config, clock) as client:
            assert _list(client).total == 0
        assert fake.authentications == 1


def test_tls_refuses_an_untrusted_server(clock: ManualClock, make_client: MakeClient) -> None:
    with (
        FakeRegistry(clients={CLIENT_KEY: CLIENT_SECRET}, clock=clock, tls=True) as fake,
        FakeRegistry(clock=clock, tls=True) as other,
    ):
        assert other.tls is not None
        config = Config(
            fake.address,
            CLIENT_KEY,
            CLIENT_SECRET,
            tls=TlsConfig(ca_pem=other.tls.ca_pem),
            default_timeout=2.0,
        )
        with make_client(config, clock) as client, pytest.raises(Unavailable):
            client.auth.token()
        assert fake.authentications == 0


def test_failover_channel_close_closes_every_channel() -> None:
    channels = [grpc.insecure_channel("localhost:1"), grpc.insecure_channel("localhost:2")]
    failover = FailoverChannel(channels, ["localhost:1", "localhost:2"])
    failover.close()
    for channel in channels:
        with pytest.raises(ValueError, match="closed channel"):
            channel.unary_unary("/x/y")(b"", timeout=0.1)
    assert "localhost:1" in repr(failover)
