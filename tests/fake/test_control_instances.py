"""Instance, lease, availability and reset controls over real gRPC (CONTRACT 5.7-5.9).

Leases move only through the fake's clock; what the registry serves is read
back through GetServiceByID, ListServices and heartbeats on loopback gRPC.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import pytest

from fake_registry import FakeRegistry, InvalidArgument, ManualClock, NotFound
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

if TYPE_CHECKING:
    from tests.fake.conftest import OpenHeartbeat

Metadata = tuple[tuple[str, str], ...]
Stub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
CLIENT_KEY = "test-key"
CLIENT_SECRET = "test-secret-value"


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return OK


def register(
    stub: Stub, md: Metadata, service_id: int, key: str, ttl: int = 60, **fields: Any
) -> registry_pb2.RegisterInstanceResponse:
    request = registry_pb2.RegisterInstanceRequest(
        service_id=service_id,
        instance_key=key,
        env="dev",
        host="10.0.0.1",
        endpoint="10.0.0.1:8080",
        ttl_seconds=ttl,
        **fields,
    )
    return stub.RegisterInstance(request, metadata=md, timeout=5)


def deregister(stub: Stub, md: Metadata, service_id: int, key: str) -> None:
    stub.DeregisterInstance(
        registry_pb2.DeregisterInstanceRequest(service_id=service_id, instance_key=key),
        metadata=md,
        timeout=5,
    )


def online(stub: Stub, md: Metadata, service_id: int, **call_options: Any) -> list[str]:
    """Keys of the service's online instances, as GetServiceByID serves them."""
    reply = stub.GetServiceByID(
        registry_pb2.GetServiceByIDRequest(id=service_id), metadata=md, timeout=5, **call_options
    )
    return sorted(i.instance_key for i in reply.service.instances)


def listed(stub: Stub, md: Metadata) -> dict[str, list[str]]:
    reply = stub.ListServices(registry_pb2.ListServicesRequest(), metadata=md, timeout=5)
    return {s.service.name: sorted(i.instance_key for i in s.instances) for s in reply.services}


def beat(stub: Stub, md: Metadata, service_id: int, key: str) -> int:
    """One heartbeat on a fresh stream; its ``expires_at``."""
    request = registry_pb2.HeartbeatRequest(service_id=service_id, instance_key=key)
    (reply,) = list(stub.HeartbeatStream(iter([request]), metadata=md, timeout=5))
    return reply.expires_at


def ensure(stub: Stub, md: Metadata, project: str, name: str) -> registry_pb2.EnsureServiceResponse:
    return stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project=project, name=name), metadata=md, timeout=5
    )


# --- leases -------------------------------------------------------------------


def test_a_60s_lease_lapses_and_the_next_heartbeat_revives_it(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
) -> None:
    start = int(clock.time())
    assert register(registry_stub, md, service.id, "node-1", ttl=60).expires_at == start + 60
    fake.advance_clock(59)
    assert online(registry_stub, md, service.id) == ["node-1"]
    fake.advance_clock(2)  # past the boundary second, whichever way it is counted
    assert online(registry_stub, md, service.id) == []
    assert fake.instances(service.id, online=True) == []

    assert beat(registry_stub, md, service.id, "node-1") == start + 61 + 60
    assert online(registry_stub, md, service.id) == ["node-1"]
    fake.advance_clock(59)
    assert online(registry_stub, md, service.id) == ["node-1"]


def test_expire_instance_lapses_the_lease_now_and_a_heartbeat_revives_it(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
) -> None:
    register(registry_stub, md, service.id, "a", ttl=3600)
    register(registry_stub, md, service.id, "b", ttl=3600)
    record = fake.expire_instance(service.id, "a")
    assert record.instance_key == "a"
    assert not record.is_online(clock.time())
    assert online(registry_stub, md, service.id) == ["b"]  # no time had to pass
    assert listed(registry_stub, md) == {"cart": ["b"]}

    assert beat(registry_stub, md, service.id, "a") == int(clock.time()) + 3600
    assert online(registry_stub, md, service.id) == ["a", "b"]


def test_force_offline_is_not_sticky(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
) -> None:
    register(registry_stub, md, service.id, "a")
    assert fake.force_offline(service.id, "a").last_heartbeat_at == 0
    assert online(registry_stub, md, service.id) == []
    (row,) = fake.instances(service.id)
    assert row.last_heartbeat_at == 0  # the row stays; only the lease is gone

    assert beat(registry_stub, md, service.id, "a") == int(clock.time()) + 60
    assert online(registry_stub, md, service.id) == ["a"]


def test_delete_instance_makes_heartbeats_answer_zero_until_it_registers_again(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
) -> None:
    register(registry_stub, md, service.id, "a")
    register(registry_stub, md, service.id, "b")
    (old_a, _) = fake.instances(service.id)
    session = open_heartbeat(md)
    assert session.beat(service.id, "a") > 0

    fake.delete_instance(service.id, "a")
    assert session.beat(service.id, "a") == 0  # the same open stream
    assert session.beat(service.id, "a") == 0
    assert session.beat(service.id, "b") > 0
    assert online(registry_stub, md, service.id) == ["b"]
    assert [r.instance_key for r in fake.instances(service.id)] == ["b"]

    register(registry_stub, md, service.id, "a")
    assert session.beat(service.id, "a") > 0
    (new_a,) = [r for r in fake.instances(service.id) if r.instance_key == "a"]
    assert new_a.id != old_a.id  # a new row


def test_instance_controls_reject_unknown_or_deregistered_instances(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, "gone")
    deregister(registry_stub, md, service.id, "gone")
    for key in ("nobody", "gone"):
        for control in (fake.expire_instance, fake.force_offline, fake.delete_instance):
            with pytest.raises(NotFound):
                control(service.id, key)
    with pytest.raises(NotFound):
        fake.expire_instance(999, "nobody")


def test_deregister_instance_control_acts_as_the_rpc(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, "a")
    assert fake.deregister_instance(service.id, "a") is True
    assert fake.deregister_instance(service.id, "a") is False
    assert online(registry_stub, md, service.id) == []
    assert beat(registry_stub, md, service.id, "a") == 0


# --- wipe -----------------------------------------------------------------------


def test_wipe_loses_every_service_and_instance(
    fake: FakeRegistry,
    registry_stub: Stub,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    service: registry_pb2.Service,
) -> None:
    register(registry_stub, md, service.id, "a")
    fake.wipe()
    assert fake.services() == []
    assert fake.instances() == []
    assert listed(registry_stub, md) == {}
    assert status_of(lambda: online(registry_stub, md, service.id)) == grpc.StatusCode.NOT_FOUND
    assert beat(registry_stub, md, service.id, "a") == 0
    assert status_of(lambda: register(registry_stub, md, service.id, "a")) == (
        grpc.StatusCode.NOT_FOUND
    )
    # Credentials and tokens are not registry data: they survive.
    assert (
        status_of(
            lambda: auth_stub.AuthenticateClient(
                user_pb2.AuthenticateClientRequest(
                    client_key=CLIENT_KEY, client_secret=CLIENT_SECRET
                ),
                timeout=5,
            )
        )
        == OK
    )
    again = ensure(registry_stub, md, "shop", "cart")
    assert again.created


# --- re-register-after-deregister quirk (CONTRACT 3.10-1) ----------------------------


def test_by_default_re_registering_a_deregistered_key_revives_it_cleanly(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
) -> None:
    register(registry_stub, md, service.id, "a", ttl=30)
    deregister(registry_stub, md, service.id, "a")
    register(registry_stub, md, service.id, "a", ttl=30)
    fake.advance_clock(20)
    assert beat(registry_stub, md, service.id, "a") == int(clock.time()) + 30
    fake.advance_clock(20)
    assert online(registry_stub, md, service.id) == ["a"]


def test_the_quirk_shows_a_re_registered_key_for_one_ttl_then_beats_answer_zero(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
) -> None:
    fake.set_reregister_quirk(True)
    register(registry_stub, md, service.id, "a", ttl=30)
    deregister(registry_stub, md, service.id, "a")
    reply = register(registry_stub, md, service.id, "a", ttl=30)
    assert reply.instance_key == "a"
    assert online(registry_stub, md, service.id) == ["a"]  # visible through its lease
    assert beat(registry_stub, md, service.id, "a") == 0
    fake.advance_clock(29)
    assert online(registry_stub, md, service.id) == ["a"]
    fake.advance_clock(2)
    assert online(registry_stub, md, service.id) == []
    assert beat(registry_stub, md, service.id, "a") == 0

    # Deregistering the hidden row still removes its lease.
    register(registry_stub, md, service.id, "a", ttl=30)
    assert online(registry_stub, md, service.id) == ["a"]
    deregister(registry_stub, md, service.id, "a")
    assert online(registry_stub, md, service.id) == []

    # A fresh key is the way out; and the switch turns off again.
    register(registry_stub, md, service.id, "b", ttl=30)
    assert beat(registry_stub, md, service.id, "b") > 0
    fake.set_reregister_quirk(False)
    register(registry_stub, md, service.id, "c", ttl=30)
    deregister(registry_stub, md, service.id, "c")
    register(registry_stub, md, service.id, "c", ttl=30)
    assert beat(registry_stub, md, service.id, "c") > 0


# --- EnsureService race (CONTRACT 3.8) ---------------------------------------------


def test_ensure_service_race_fails_creating_calls_with_internal_after_creating(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    fake.fail_ensure_service_race(times=2)
    # Finding an existing service never races.
    existing = ensure(registry_stub, md, "shop", "cart")
    assert (existing.created, existing.service.id) == (False, service.id)

    for name in ("orders", "billing"):
        code = status_of(functools.partial(ensure, registry_stub, md, "shop", name))
        assert code == grpc.StatusCode.INTERNAL
        # The loser's row exists: the retry finds it.
        retry = ensure(registry_stub, md, "shop", name)
        assert not retry.created
    third = ensure(registry_stub, md, "shop", "payments")
    assert third.created
    assert [s.name for s in fake.services()] == ["cart", "orders", "billing", "payments"]
    fake.wait_for("EnsureService", count=6)
    losers = fake.assert_called("EnsureService", code="INTERNAL", times=2)
    # The injected race is journaled beside the calls it touched, and only there.
    assert [[e.rule for e in c.faults] for c in losers] == [["ensure_service_race"]] * 2
    assert [e.call_seq for e in fake.journal.events()] == [c.seq for c in losers]


def test_fail_ensure_service_race_rejects_negative_counts(fake: FakeRegistry) -> None:
    with pytest.raises(InvalidArgument):
        fake.fail_ensure_service_race(-1)


# --- availability ---------------------------------------------------------------------


def test_restart_keeps_state_and_port_and_ends_open_streams(
    fake: FakeRegistry,
    registry_stub: Stub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
) -> None:
    register(registry_stub, md, service.id, "a", ttl=3600)
    session = open_heartbeat(md)
    assert session.beat(service.id, "a") > 0
    address = fake.address

    fake.restart()
    assert fake.running
    assert fake.address == address
    with pytest.raises(grpc.RpcError) as excinfo:
        session.read()
    assert cast(grpc.Call, excinfo.value).code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    )
    # Same port, same data, same signing key: the old token still works.
    assert online(registry_stub, md, service.id, wait_for_ready=True) == ["a"]
    assert beat(registry_stub, md, service.id, "a") > 0


def test_restart_without_state_wipes_the_registry(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    register(registry_stub, md, service.id, "a")
    address = fake.address
    fake.restart(keep_state=False)
    assert fake.address == address
    code = status_of(lambda: online(registry_stub, md, service.id, wait_for_ready=True))
    assert code == grpc.StatusCode.NOT_FOUND
    assert fake.services() == []


def test_a_stopped_fake_is_unavailable_until_started_again(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service: registry_pb2.Service
) -> None:
    address = fake.address
    fake.stop()
    assert not fake.running
    with pytest.raises(RuntimeError):
        _ = fake.address
    code = status_of(
        lambda: registry_stub.ListServices(
            registry_pb2.ListServicesRequest(), metadata=md, timeout=1
        )
    )
    assert code == grpc.StatusCode.UNAVAILABLE
    fake.start()
    assert fake.address == address
    # A fresh channel with its own subchannel: the old one is in reconnect
    # backoff after the outage (about 1 s).
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        assert online(stub, md, service.id, wait_for_ready=True) == []
        assert listed(stub, md) == {"cart": []}


# --- reset ----------------------------------------------------------------------


def test_reset_clears_faults_stream_controls_and_journal_and_restores_state(
    fake: FakeRegistry,
    registry_stub: Stub,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
    token: str,
) -> None:
    seeded_ttl = fake.token_ttl
    register(registry_stub, md, service.id, "a")
    fake.add_fault("ListServices", code="UNAVAILABLE")
    fake.add_fault("AuthenticateClient", code="INTERNAL")
    fake.end_streams_after(1)
    fake.delay_answers(60)
    fake.answer_zero("a")
    fake.set_reregister_quirk(True)
    fake.fail_ensure_service_race(3)
    fake.set_token_ttl(5)
    fake.add_client("extra", "extra-secret")
    fake.disable_client(CLIENT_KEY)
    fake.set_auth_enabled(False)
    fake.set_exempt_methods([])
    assert fake.calls()

    fake.reset()

    assert fake.faults() == []
    assert fake.calls() == []
    assert fake.journal.events() == []
    assert fake.token_ttl == seeded_ttl
    assert fake.clients() == [CLIENT_KEY]
    assert fake.services() == []  # the service was created after start
    assert (fake.authentications, fake.renewals) == (0, 0)
    assert fake.exempt_methods
    assert "AuthenticateClient" in fake.exempt_methods[0]

    # Over the wire: auth enforced again, the client enabled, no faults.
    assert (
        status_of(lambda: registry_stub.ListServices(registry_pb2.ListServicesRequest(), timeout=5))
        == grpc.StatusCode.UNAUTHENTICATED
    )
    reply = auth_stub.AuthenticateClient(
        user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
        timeout=5,
    )
    assert reply.expires_at == int(fake.now()) + seeded_ttl
    assert listed(registry_stub, md) == {}
    created = ensure(registry_stub, md, "shop", "cart")
    assert created.created
    assert created.service.id == 1  # ids restart with the data
    fake.register_instance(created.service.id, "a")
    session = open_heartbeat(md)
    for _ in range(3):  # no end-after, no delay, no zero answers
        assert session.beat(created.service.id, "a") > 0
    deregister(registry_stub, md, created.service.id, "a")
    register(registry_stub, md, created.service.id, "a")
    assert session.beat(created.service.id, "a") > 0  # the quirk is off
    assert fake.calls()  # journaling carries on, numbered afresh
    assert fake.calls()[0].seq == 1


def test_reset_restores_data_seeded_before_start(clock: ManualClock) -> None:
    fake = FakeRegistry(clients={CLIENT_KEY: CLIENT_SECRET}, clock=clock)
    seeded = fake.ensure_service("shop", "cart")
    fake.register_instance(seeded.id, "seeded", ttl_seconds=60)
    with fake, grpc.insecure_channel(fake.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        auth = user_pb2_grpc.ClientAuthServiceStub(channel)
        token = auth.AuthenticateClient(
            user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
            timeout=5,
        ).access_token
        md = (("authorization", f"Bearer {token}"),)
        fake.delete_instance(seeded.id, "seeded")
        register(stub, md, seeded.id, "later")
        ensure(stub, md, "shop", "other")

        fake.reset()
        assert listed(stub, md) == {"cart": ["seeded"]}
        assert beat(stub, md, seeded.id, "seeded") > 0
        assert beat(stub, md, seeded.id, "later") == 0
    assert fake.errors.take() == []
