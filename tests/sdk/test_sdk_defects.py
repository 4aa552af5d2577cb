"""The audit index of CONTRACT 4.10: one end-to-end test per reference-SDK defect G1-G18.

Each test is named after the defect it proves fixed and asserts the table's required
behaviour through the plugin's fixtures (``fake_registry``, ``registry_clock``,
``registry_credentials``, ``fake_backends``) in virtual time: no sleeps, only bounded waits.

Every scenario runs on both flavours (``[sync]`` / ``[async]``): the ``client`` fixture
replaces the plugin's ``registry_client`` with a client made by ``make_client``
(``tests/flavours.py``): an ``sdk.Client``, or a blocking view of a real
``sdk.aio.AsyncClient`` on an event loop thread. Registrations start through the flavour's
``start_registration`` (``sdk.registration`` or ``sdk.aio.registration``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
import pytest

from fake_registry import FakeRegistry
from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import Client, Config, TlsConfig
from sdk.errors import (
    ClientClosed,
    DeadlineExceeded,
    Internal,
    InvalidArgument,
    NoHealthyInstances,
    NoInstances,
    NotFound,
    PermissionDenied,
    RegistryError,
    ServiceNotFound,
    Unauthenticated,
    Unavailable,
    is_retryable,
)
from sdk.registration import LeaseState, Reason, Registration
from tests.flavours import MakeClient, start_registration
from tests.lease_events import Recorder

HOST = "10.0.0.7"
# What grpcio raises for a call on a closed channel: sync and asyncio channels differ (the
# SDK's own methods raise ClientClosed in both flavours, see ``sdk.errors.client_closed``).
CLOSED_CHANNEL: dict[str, type[Exception]] = {"sync": ValueError, "async": grpc.aio.UsageError}
AUTHENTICATE = "AuthenticateClient"
RENEW = "RenewToken"


def beat(clock: Any, reg: Registration, times: int = 1) -> None:
    """Move virtual time one interval per beat and wait until each answer was handled."""
    for _ in range(times):
        answered = reg.answers
        clock.advance(reg.interval)
        assert reg.wait_answers(answered + 1), reg.events


def online(fake: Any, service_id: int) -> set[str]:
    return {i.instance_key for i in fake.instances(service_id, online=True)}


def register(client: Client, fake: Any, **options: Any) -> tuple[int, Registration]:
    service_id = fake.ensure_service("shop", "cart").id
    options.setdefault("instance_key", "i-1")
    options.setdefault("ttl_seconds", 3)
    return service_id, start_registration(client, service_id=service_id, host=HOST, **options)


@pytest.fixture
def other_client(
    fake_registry: Any, registry_clock: Any, registry_credentials: Any, make_client: MakeClient
) -> Callable[..., Client]:
    """``other_client(fake=None, secret=None, **fields)``: a client of the test's flavour on
    the fake's clock (closed at teardown), for ``fake`` (default ``fake_registry``) with the
    registry's credentials (``secret`` replaces the secret) and more ``Config`` ``fields``.
    """

    def build(fake: Any = None, secret: str | None = None, **fields: Any) -> Client:
        address = (fake or fake_registry).address
        creds = registry_credentials
        config = Config(address, creds.client_key, secret or creds.client_secret, **fields)
        client: Client = make_client(config, clock=registry_clock)
        return client

    return build


@pytest.fixture
def client(other_client: Callable[..., Client]) -> Client:
    """The plugin's ``registry_client``, of the test's flavour (closed at teardown)."""
    return other_client()


def test_g1_lease_lost_on_zero_answer_re_registers_same_key_then_new_key(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    recorder = Recorder()
    sid, reg = register(client, fake_registry, on_event=recorder)
    beat(registry_clock, reg)
    fake_registry.answer_zero("i-1")
    beat(registry_clock, reg)  # 0 -> re-register with the same key and data
    recorder.wait_for(Reason.LEASE_ZERO)
    recorder.wait_for(Reason.SAME_KEY)
    registers = fake_registry.journal.calls("RegisterInstance")
    assert [c.request.instance_key for c in registers] == ["i-1", "i-1"]
    assert registers[1].request.host == HOST
    beat(registry_clock, reg)  # 0 again right after a fresh re-register -> a new key
    (new_key,) = recorder.wait_for(Reason.NEW_KEY)
    assert new_key.detail == "i-1"
    assert reg.instance_key not in ("", "i-1")
    beat(registry_clock, reg)
    assert reg.state is LeaseState.BEATING
    assert reg.instance_key in online(fake_registry, sid)
    reg.stop()


def test_g2_end_of_stream_is_a_failure_and_the_stream_reopens(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    recorder = Recorder()
    sid, reg = register(client, fake_registry, on_event=recorder, ttl_seconds=300)
    fake_registry.end_streams_after(1)
    beat(registry_clock, reg)  # answered, then the server ends the stream with OK
    (ended,) = recorder.wait_for(Reason.STREAM_ENDED)
    assert ended.state is LeaseState.BACKING_OFF  # not counted as a good beat
    fake_registry.clear_stream_controls()
    registry_clock.advance(1.0)  # the first backoff is at most 1 s
    recorder.wait_for(Reason.REOPEN)
    fake_registry.journal.wait_for(lambda call: call.name == "HeartbeatStream", 2)
    beat(registry_clock, reg)
    assert reg.state is LeaseState.BEATING
    assert online(fake_registry, sid) == {"i-1"}
    reg.stop()


def test_g3_short_ttl_beats_every_third_and_never_lapses(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    sid, reg = register(client, fake_registry, ttl_seconds=3)
    assert reg.interval == 1.0  # ttl / 3, not a 10 s floor
    start = registry_clock.time()
    for _ in range(6):
        beat(registry_clock, reg)
        assert online(fake_registry, sid) == {"i-1"}
    (stream,) = fake_registry.journal.calls("HeartbeatStream")
    beats = [f.virtual_time - start for f in stream.frames if f.direction == "in"]
    assert beats == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # first beat after ttl/3, not a full ttl
    assert reg.expires_at == int(start) + 6 + 3
    reg.stop()
    _, default = register(client, fake_registry, instance_key="i-2", ttl_seconds=0)
    assert default.interval == 20.0  # the effective TTL (60) when 0 was sent
    default.stop()


def test_g4_backoff_is_jittered_and_stop_during_backoff_returns_promptly(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    recorder = Recorder()
    sid, reg = register(
        client, fake_registry, on_event=recorder, ttl_seconds=300, rng=random.Random(7)
    )
    beat(registry_clock, reg)
    fake_registry.reject_streams("UNAVAILABLE")
    assert fake_registry.kill_streams("i-1") == 1
    expected = random.Random(7)
    for attempt, ceiling in enumerate((1, 2, 4)):
        failed = recorder.wait_for(Reason.STREAM_FAILED, attempt + 1)[-1]
        assert failed.state is LeaseState.BACKING_OFF
        delay = expected.random() * ceiling  # full jitter under 1, 2, 4 s
        registry_clock.advance(delay)
        reopen = recorder.wait_for(Reason.REOPEN, attempt + 1)[-1]
        assert reopen.at - failed.at == pytest.approx(delay)
    recorder.wait_for(Reason.STREAM_FAILED, 4)
    assert reg.wait_state(LeaseState.BACKING_OFF)
    assert online(fake_registry, sid) == {"i-1"}  # a 300 s lease outlives the backoff
    started = time.monotonic()
    assert reg.stop()
    assert time.monotonic() - started < 1.0
    assert reg.state is LeaseState.STOPPED
    fake_registry.journal.assert_called("DeregisterInstance", times=1, code="OK")


def test_g5_one_long_lived_stream_reopened_with_a_fresh_token(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    recorder = Recorder()
    sid, reg = register(client, fake_registry, on_event=recorder, ttl_seconds=300)
    beat(registry_clock, reg, 10)
    (stream,) = fake_registry.journal.calls("HeartbeatStream")  # not one per beat
    assert len([f for f in stream.frames if f.direction == "in"]) == 10
    old = client.auth.token()
    fake_registry.revoke_token(old)
    assert fake_registry.kill_streams("i-1", code="UNAUTHENTICATED") == 1
    recorder.wait_for(Reason.STREAM_FAILED)
    registry_clock.advance(1.0)
    recorder.wait_for(Reason.REOPEN)
    beat(registry_clock, reg)
    first, second = fake_registry.journal.calls("HeartbeatStream")[:2]
    assert dict(first.metadata)["authorization"] == f"Bearer {old}"
    assert dict(second.metadata)["authorization"] != f"Bearer {old}"
    assert reg.state is LeaseState.BEATING
    assert online(fake_registry, sid) == {"i-1"}
    reg.stop()


def test_g6_refresh_lead_is_half_the_lifetime_and_single_flight(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    fake_registry.set_token_ttl(10)  # lead = min(300, 10 / 2) = 5 s
    client.auth.token()
    registry_clock.advance(4)
    client.auth.token()
    assert (fake_registry.authentications, fake_registry.renewals) == (1, 0)
    registry_clock.advance(2)  # inside the lead: renewal due, token still valid
    barrier = threading.Barrier(20)
    tokens: list[str] = []

    def call() -> None:
        barrier.wait(timeout=10)
        tokens.append(client.auth.token())

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(tokens) == 20
    assert (fake_registry.authentications, fake_registry.renewals) == (1, 1)


def test_g7_unauthenticated_call_re_authenticates_once_and_retries_once(
    fake_registry: Any, client: Client
) -> None:
    fake_registry.revoke_token(client.auth.token())
    assert client.registry.list_services() == ()  # no failed user call
    assert fake_registry.authentications == 2
    assert [c.code for c in fake_registry.calls("ListServices")] == ["UNAUTHENTICATED", "OK"]
    fake_registry.fail_next("ListServices", "UNAUTHENTICATED", times=5)
    with pytest.raises(Unauthenticated):
        client.registry.list_services()
    assert len(fake_registry.calls("ListServices")) == 4  # one retry, never a loop


def test_g8_bad_credentials_are_final_and_disabled_credential_surfaces(
    fake_registry: Any,
    registry_clock: Any,
    registry_credentials: Any,
    client: Client,
    other_client: Callable[..., Client],
) -> None:
    key = registry_credentials.client_key
    with other_client(secret="wrong-secret") as bad:
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                bad.auth.token()
        assert len(fake_registry.calls(AUTHENTICATE)) == 1  # not retried in a tight loop
    fake_registry.set_token_ttl(10)
    client.auth.token()
    fake_registry.disable_client(key)
    registry_clock.advance(6)  # renewal due on an unexpired token
    with pytest.raises(PermissionDenied):
        client.auth.token()
    fake_registry.assert_called(RENEW, times=1, code="PERMISSION_DENIED")
    assert fake_registry.calls(AUTHENTICATE)[-1].code == "UNAUTHENTICATED"  # confirmed


def test_g9_close_stops_registrations_and_closes_every_channel(
    fake_registry: Any,
    fake_backends: Any,
    other_client: Callable[..., Client],
    make_client: MakeClient,
) -> None:
    fake_backends(2)
    with other_client() as c:
        sid, reg = register(c, fake_registry)
        stub = echo_pb2_grpc.EchoServiceStub(c.discovery.channel("demo", "echo"))
        assert stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5).message == "x"
        # The registry channel, which auth shares (a stub made while it is open).
        registry = registry_pb2_grpc.RegistryServiceStub(c.channel)
        assert registry.ListServices(registry_pb2.ListServicesRequest(env="dev")).total == 2
    assert c.closed
    assert reg.state is LeaseState.STOPPED
    fake_registry.journal.assert_called("DeregisterInstance", times=1, code="OK")
    assert fake_registry.instances(sid) == []
    assert c.discovery._channels.addresses() == []
    with pytest.raises(ValueError, match="closed channel"):  # both flavours' discovery channels
        stub.Echo(echo_pb2.EchoRequest(message="x"), timeout=5)
    with pytest.raises(CLOSED_CHANNEL[make_client.flavour], match=r"(?i)closed"):  # grpcio's own
        registry.ListServices(registry_pb2.ListServicesRequest(env="dev"), timeout=5)
    with pytest.raises(ClientClosed):  # no new stubs: grpcio crashes on a closed channel
        _ = c.channel
    c.auth.invalidate()
    with pytest.raises(ClientClosed):
        c.auth.token()


def test_g10_cooldown_keyed_by_instance_cleared_by_success_and_pruned(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    sid = fake_registry.ensure_service("demo", "echo").id
    for key, host in (("a", "10.0.0.1"), ("b", "10.0.0.2")):  # both with an empty endpoint
        fake_registry.register_instance(sid, key, endpoints=[{"host": host}], grpc_port=1)
    discovery = client.discovery
    first = discovery.pick("demo", "echo")
    assert first.instance.endpoint == ""
    first.failed(RuntimeError("boom"))
    view = discovery.resolve("demo", "echo")
    other = next(i for i in view.instances if i.instance_key != first.instance.instance_key)
    assert discovery.is_cooling("demo", "echo", first.instance)
    assert not discovery.is_cooling("demo", "echo", other)  # "" does not block the rest
    assert {discovery.pick("demo", "echo").instance.instance_key for _ in range(3)} == {
        other.instance_key
    }
    again = discovery.pick("demo", "echo")
    again.failed()
    assert discovery.failure_records("demo", "echo") == 2
    again.succeeded()
    assert discovery.failure_records("demo", "echo") == 1  # success clears its record
    fake_registry.deregister_instance(sid, first.instance.instance_key)
    registry_clock.advance(31)
    discovery.resolve("demo", "echo")
    assert discovery.failure_records("demo", "echo") == 0  # vanished: pruned


def test_g11_round_robin_survives_refresh_single_flight_stale_and_immutable(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    sid = fake_registry.ensure_service("demo", "echo").id
    for n in range(3):
        fake_registry.register_instance(
            sid, f"e-{n}", host=f"10.0.0.{n + 1}", grpc_port=1, ttl_seconds=3600
        )
    discovery = client.discovery
    keys = [i.instance_key for i in discovery.resolve("demo", "echo").instances]
    picks = [discovery.pick("demo", "echo").instance.instance_key for _ in range(2)]
    assert picks == keys[:2]
    registry_clock.advance(31)  # the next pick refreshes the cache
    picks = [discovery.pick("demo", "echo").instance.instance_key for _ in range(2)]
    assert picks == [keys[2], keys[0]]  # the index was kept
    registry_clock.advance(31)
    fake_registry.add_fault("ListServices", delay=0.3, real_time=True, times=1)
    calls_before = len(fake_registry.calls("ListServices"))
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(discovery.resolve("demo", "echo")))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(results) == 8
    assert len(fake_registry.calls("ListServices")) == calls_before + 1  # one refresh
    view = discovery.resolve("demo", "echo")
    registry_clock.advance(31)
    fake_registry.fail_next("ListServices", "UNAVAILABLE")
    assert discovery.resolve("demo", "echo") is view  # stale served on error
    assert isinstance(view.instances, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.instances[0].host = "evil"  # type: ignore[misc]


def test_g12_meta_spec_endpoints_and_timestamps_are_parsed(
    fake_registry: Any, registry_clock: Any, client: Client
) -> None:
    spec = {"proto": "echo.v1", "limits": {"rps": 5}}
    sid = client.registry.ensure_service("demo", "echo", spec=spec).service.id
    now = int(registry_clock.time())
    client.registry.register_instance(
        sid, instance_key="k", host="h", endpoints=[{"host": "h", "network": "internal"}],
        meta={"zone": "a", "tags": ["x"]}, ttl_seconds=30, grpc_port=9000,
    )  # fmt: skip
    view = client.registry.get_service(sid)
    assert view.service.spec == spec
    assert json.loads(view.service.spec_json) == spec  # the raw text is kept too
    assert view.service.created_at == view.service.updated_at == now
    (inst,) = view.instances
    assert inst.meta == {"zone": "a", "tags": ["x"]}
    assert json.loads(inst.meta_json) == {"zone": "a", "tags": ["x"]}
    assert [(e.host, e.network, e.priority) for e in inst.endpoints] == [("h", "internal", 0)]
    assert json.loads(inst.endpoints_json)[0]["host"] == "h"
    assert (inst.created_at, inst.updated_at, inst.last_heartbeat_at) == (now, now, now)
    assert (inst.ttl_seconds, inst.expires_at) == (30, now + 30)


def test_g13_addresses_by_network_then_priority_ipv6_bracketed_grpc_fallback(
    fake_registry: Any, client: Client
) -> None:
    sid = fake_registry.ensure_service("demo", "echo").id
    endpoints = [
        {"host": "slow.internal", "network": "internal", "priority": 5},
        {"host": "fe80::1", "network": "internal", "priority": 1},
        {"host": "pub.example", "network": "external", "priority": 0},
    ]
    fake_registry.register_instance(
        sid, "multi", host="h", endpoints=endpoints, http_port=8080, grpc_port=9000
    )
    fake_registry.register_instance(sid, "legacy", host="h2", endpoint="http://[::1]:7000/api")
    fake_registry.register_instance(sid, "portless", host="h3", endpoint="svc.local")
    view = client.registry.get_service(sid)
    multi, legacy, portless = (view.find(k) for k in ("multi", "legacy", "portless"))
    assert multi is not None
    assert legacy is not None
    assert portless is not None
    assert multi.address() == "pub.example:8080"  # lowest priority of any network
    assert multi.address("internal") == "[fe80::1]:8080"  # network, then priority
    assert multi.grpc_address("internal") == "[fe80::1]:9000"
    assert multi.all_addresses()[0] == "pub.example:8080"
    assert legacy.grpc_address() == "[::1]:7000"  # no grpc_port: the legacy host:port
    assert legacy.address() == "[::1]:7000"  # scheme and path stripped
    assert portless.grpc_address() is None  # no port known: no guess, no ""


def test_g14_env_defaults_from_config_and_caller_inputs_are_not_mutated(
    fake_registry: Any, other_client: Callable[..., Client]
) -> None:
    meta = {"zone": "a", "tags": ["x"]}
    endpoints = [{"host": "10.0.0.1", "network": "internal", "priority": 1}]
    frozen = copy.deepcopy((meta, endpoints))
    with other_client(env="prod") as client:
        sid = client.registry.ensure_service("demo", "echo").service.id
        registered = client.registry.register_instance(
            sid, instance_key="i-1", host="h", endpoints=endpoints, meta=meta, grpc_port=1
        )
        assert registered.env == "prod"
        reg = start_registration(
            client, service_id=0, ensure=("demo", "other"), host="h", instance_key="i-2",
            endpoints=endpoints, meta=meta,
        )  # fmt: skip
        reg.stop(deregister=False)
    assert (meta, endpoints) == frozen
    envs = [c.request.env for c in fake_registry.journal.calls("RegisterInstance")]
    assert envs == ["prod", "prod"]
    assert {r.env for r in fake_registry.instances()} == {"prod"}


def test_g15_errors_are_typed_with_codes_and_is_retryable(
    fake_registry: Any, client: Client
) -> None:
    cases = [
        ("NOT_FOUND", NotFound, False),
        ("PERMISSION_DENIED", PermissionDenied, False),
        ("INVALID_ARGUMENT", InvalidArgument, False),
        ("UNAVAILABLE", Unavailable, True),
        ("DEADLINE_EXCEEDED", DeadlineExceeded, True),
        ("INTERNAL", Internal, False),
    ]
    for code, kind, retryable in cases:
        fake_registry.fail_next("ListServices", code)
        with pytest.raises(kind) as info:
            client.registry.list_services()
        error = info.value
        assert isinstance(error, RegistryError)
        assert error.code is getattr(grpc.StatusCode, code)
        assert str(error.method).endswith("/ListServices")
        assert is_retryable(error) is retryable
    assert is_retryable(Internal("x"), idempotent=True)
    with pytest.raises(ServiceNotFound) as missing:
        client.discovery.pick("demo", "nope")
    assert isinstance(missing.value, NotFound)
    sid = fake_registry.ensure_service("demo", "one").id
    with pytest.raises(NoInstances):
        client.discovery.pick("demo", "one")
    fake_registry.register_instance(sid, "only", grpc_port=1)
    client.discovery.invalidate("demo", "one")
    client.discovery.pick("demo", "one").failed()
    with pytest.raises(NoHealthyInstances) as cooling:
        client.discovery.pick("demo", "one")
    assert not is_retryable(cooling.value)


def test_g16_default_deadline_on_every_unary_call_and_overridable(
    fake_registry: Any, other_client: Callable[..., Client]
) -> None:
    with other_client(default_timeout=0.3) as client:
        client.auth.token()
        fake_registry.add_fault("ListServices", drop=True)
        fake_registry.add_fault("GetServiceByID", drop=True)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.registry.list_services()
        with pytest.raises(DeadlineExceeded):
            client.registry.get_service(1)
        with pytest.raises(DeadlineExceeded):
            client.discovery.resolve("demo", "echo")
        assert time.monotonic() - started < 3.0
        fake_registry.clear_faults()
        fake_registry.add_fault("ListServices", delay=0.5, real_time=True, times=1)
        assert client.registry.list_services(timeout=5) == ()  # a longer caller deadline
        fake_registry.add_fault("ListServices", drop=True)
    with other_client(default_timeout=30) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.registry.list_services(timeout=0.2)  # a shorter one
        assert time.monotonic() - started < 3.0


def test_g17_get_service_spans_envs_list_filters_env_and_client_side_filter(
    fake_registry: Any, client: Client
) -> None:
    sid = fake_registry.ensure_service("demo", "echo").id
    fake_registry.register_instance(sid, "p", env="prod", host="a", grpc_port=1)
    fake_registry.register_instance(sid, "d", env="dev", host="b", grpc_port=1)
    everything = client.registry.get_service(sid)
    assert sorted(i.instance_key for i in everything.instances) == ["d", "p"]
    only_dev = client.registry.get_service(sid, env="dev")
    assert [i.instance_key for i in only_dev.instances] == ["d"]
    assert [i.instance_key for i in everything.in_env("prod").instances] == ["p"]
    (listed,) = client.registry.list_services("demo")
    assert [i.instance_key for i in listed.instances] == ["d"]  # config.env
    (prod,) = client.registry.list_services("demo", env="prod")
    assert [i.instance_key for i in prod.instances] == ["p"]
    resolved = client.discovery.resolve("demo", "echo")
    assert [i.instance_key for i in resolved.instances] == ["d"]


def test_g18_tls_option_and_logging_without_secrets(
    fake_registry: Any,
    registry_clock: Any,
    registry_credentials: Any,
    client: Client,
    other_client: Callable[..., Client],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    creds = registry_credentials
    clients = {creds.client_key: creds.client_secret}
    with FakeRegistry(clients=clients, clock=registry_clock, tls=True) as secure:
        assert secure.tls is not None
        tls = TlsConfig(ca_pem=secure.tls.ca_pem)
        with other_client(fake=secure, tls=tls) as over_tls:
            assert over_tls.registry.list_services() == ()
        assert secure.authentications == 1
    caplog.set_level(logging.DEBUG, logger="sdk")
    token = client.auth.token()
    fake_registry.revoke_token(token)
    client.registry.list_services()  # logs the re-authentication
    _, reg = register(client, fake_registry)
    reg.stop()
    records = [r for r in caplog.records if r.name.startswith("sdk")]
    assert records
    text = "\n".join(r.getMessage() for r in records)
    assert token not in text
    assert creds.client_secret not in text
    assert capsys.readouterr().out == ""  # logging, not print
