"""Heartbeat stream controls over real gRPC (CONTRACT 5.6).

Streams are driven one message at a time through ``open_heartbeat``; leases
and virtual delays move only through the fake's clock.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from fake_registry import FakeRegistry, InvalidArgument, ManualClock
from fake_registry.journal import Call
from protos.registry.v1 import registry_pb2, registry_pb2_grpc

if TYPE_CHECKING:
    from pytest_plugin.contract.support import HeartbeatSession
    from tests.fake.conftest import OpenHeartbeat

Metadata = tuple[tuple[str, str], ...]
Stub = registry_pb2_grpc.RegistryServiceStub
HEARTBEAT = "/xiaozhizhang.registry.v1.RegistryService/HeartbeatStream"
TTL = 30


@pytest.fixture
def service_id(fake: FakeRegistry) -> int:
    return fake.ensure_service("shop", "cart").id


def seed(fake: FakeRegistry, service_id: int, *keys: str) -> None:
    for key in keys:
        fake.register_instance(service_id, key, ttl_seconds=TTL)


def stream_call(fake: FakeRegistry, instance_key: str) -> Call:
    """The journaled HeartbeatStream call that carried ``instance_key``."""
    (call,) = [
        c
        for c in fake.calls("HeartbeatStream")
        if any(getattr(m, "instance_key", "") == instance_key for m in c.frames_in())
    ]
    return call


def rpc_error(session: HeartbeatSession) -> grpc.Call:
    with pytest.raises(grpc.RpcError) as excinfo:
        session.read()
    return cast(grpc.Call, excinfo.value)


# --- listing ------------------------------------------------------------------


def test_streams_lists_open_streams_with_instances_time_and_frame_counts(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
) -> None:
    seed(fake, service_id, "a", "b", "c")
    assert fake.streams() == []
    first = open_heartbeat(md)
    first.beat(service_id, "a")
    clock.advance(5)
    second = open_heartbeat(md)
    second.beat(service_id, "b")
    second.beat(service_id, "c")
    second.beat(service_id, "b")

    infos = sorted(fake.streams(), key=lambda s: s.id)
    assert [(s.method, s.instance_keys, s.frames_in, s.frames_out) for s in infos] == [
        (HEARTBEAT, ("a",), 1, 1),
        (HEARTBEAT, ("b", "c"), 3, 3),
    ]
    assert infos[1].opened_at - infos[0].opened_at == 5
    assert infos[1].opened_at == clock.time()

    assert first.close() == grpc.StatusCode.OK
    (left,) = fake.streams()
    assert left.instance_keys == ("b", "c")


# --- kill ---------------------------------------------------------------------


@pytest.mark.parametrize("code", ["UNAVAILABLE", "INTERNAL", "CANCELLED", "UNAUTHENTICATED"])
def test_killing_one_stream_among_ten_ends_only_it_with_the_chosen_status(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
    code: str,
) -> None:
    keys = [f"node-{i}" for i in range(10)]
    seed(fake, service_id, *keys)
    sessions = {key: open_heartbeat(md) for key in keys}
    for key, session in sessions.items():
        assert session.beat(service_id, key) == int(clock.time()) + TTL
    assert len(fake.streams()) == 10

    assert fake.kill_streams("node-3", code=code, details="chaos") == 1

    error = rpc_error(sessions["node-3"])
    assert error.code() == grpc.StatusCode[code]
    assert error.details() == "chaos"
    assert sorted(k for s in fake.streams() for k in s.instance_keys) == sorted(
        k for k in keys if k != "node-3"
    )

    # The server kept running: the other nine keep beating, on the same streams.
    for _ in range(2):
        clock.advance(10)
        for key, session in sessions.items():
            if key != "node-3":
                assert session.beat(service_id, key) == int(clock.time()) + TTL

    killed = stream_call(fake, "node-3")
    assert killed.code == code
    assert killed.details == "chaos"
    assert [e.action for e in killed.faults] == [f"kill {code}"]
    for key in keys:
        if key != "node-3":
            other = stream_call(fake, key)
            assert other.faults == []
            assert not other.done


def test_kill_streams_without_a_key_ends_all_and_new_streams_still_open(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a", "b", "c")
    sessions = [open_heartbeat(md) for _ in range(3)]
    for session, key in zip(sessions, "abc", strict=True):
        session.beat(service_id, key)
    assert fake.kill_streams() == 3
    for session in sessions:
        assert rpc_error(session).code() == grpc.StatusCode.UNAVAILABLE
    assert fake.streams() == []

    fresh = open_heartbeat(md)
    assert fresh.beat(service_id, "a") > 0
    assert fresh.close() == grpc.StatusCode.OK


def test_kill_streams_of_an_unknown_instance_kills_nothing(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    session = open_heartbeat(md)
    session.beat(service_id, "a")
    assert fake.kill_streams("nobody", code="INTERNAL") == 0
    assert session.beat(service_id, "a") > 0


def test_kill_streams_rejects_ok_and_unknown_codes(fake: FakeRegistry) -> None:
    for code in ("OK", "BOGUS", grpc.StatusCode.OK):
        with pytest.raises(InvalidArgument):
            fake.kill_streams(code=code)


def test_kill_ends_a_stream_carrying_several_instances(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a", "b", "c")
    shared = open_heartbeat(md)
    shared.beat(service_id, "a")
    shared.beat(service_id, "b")
    alone = open_heartbeat(md)
    alone.beat(service_id, "c")
    assert fake.kill_streams("b", code="INTERNAL") == 1
    assert rpc_error(shared).code() == grpc.StatusCode.INTERNAL
    assert alone.beat(service_id, "c") > 0


# --- reject opens -------------------------------------------------------------


def test_reject_streams_fails_new_opens_for_its_lifetime(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    survivor = open_heartbeat(md)
    survivor.beat(service_id, "a")

    handle = fake.reject_streams("RESOURCE_EXHAUSTED", times=2)
    for _ in range(2):
        rejected = open_heartbeat(md)
        rejected.send(service_id, "a")
        assert rpc_error(rejected).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert [s.instance_keys for s in fake.streams()] == [("a",)]  # only the survivor
    accepted = open_heartbeat(md)
    assert accepted.beat(service_id, "a") > 0
    assert survivor.beat(service_id, "a") > 0  # open streams are not affected
    assert handle.hits == 2

    rejected_calls = fake.wait_for(
        lambda c: c.name == "HeartbeatStream" and c.code == "RESOURCE_EXHAUSTED", count=2
    )
    assert all(c.frames == [] for c in rejected_calls)  # refused before any message
    assert all([e.action for e in c.faults] == ["abort RESOURCE_EXHAUSTED"] for c in rejected_calls)


def test_reject_streams_always_until_removed(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    handle = fake.reject_streams()
    for _ in range(3):
        session = open_heartbeat(md)
        session.send(service_id, "a")
        assert rpc_error(session).code() == grpc.StatusCode.UNAVAILABLE
    handle.remove()
    assert open_heartbeat(md).beat(service_id, "a") > 0


def test_a_dropped_stream_open_ends_at_the_client_deadline(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    fake.add_fault("HeartbeatStream", drop=True, times=1)
    request = registry_pb2.HeartbeatRequest(service_id=service_id, instance_key="a")
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as excinfo:
        list(registry_stub.HeartbeatStream(iter([request]), metadata=md, timeout=0.2))
    assert cast(grpc.Call, excinfo.value).code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started >= 0.2
    answers = list(registry_stub.HeartbeatStream(iter([request]), metadata=md, timeout=5))
    assert [a.expires_at > 0 for a in answers] == [True]


# --- answer zero ----------------------------------------------------------------


def test_answer_zero_for_one_instance_does_not_renew_it(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
) -> None:
    seed(fake, service_id, "a", "b")
    registered_at = int(clock.time())
    session = open_heartbeat(md)
    fake.answer_zero("a")
    clock.advance(10)
    assert session.beat(service_id, "a") == 0
    assert session.beat(service_id, "b") == int(clock.time()) + TTL  # same stream
    leases = {r.instance_key: r.last_heartbeat_at for r in fake.instances(service_id)}
    assert leases == {"a": registered_at, "b": registered_at + 10}

    fake.answer_zero("a", enabled=False)
    assert session.beat(service_id, "a") == int(clock.time()) + TTL
    call = stream_call(fake, "a")
    assert [e.action for e in call.faults] == ["answer expires_at=0"]
    assert call.frames_out()[0] == registry_pb2.HeartbeatResponse(expires_at=0)


def test_answer_zero_needs_a_key(fake: FakeRegistry) -> None:
    with pytest.raises(InvalidArgument):
        fake.answer_zero("")


# --- end after N --------------------------------------------------------------


def test_end_streams_after_n_answers_ends_cleanly(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    fake.end_streams_after(3)
    session = open_heartbeat(md)
    for _ in range(3):
        assert session.beat(service_id, "a") > 0
    with pytest.raises(StopIteration):
        session.read()
    assert session.call.code() == grpc.StatusCode.OK

    (ended,) = fake.wait_for("HeartbeatStream")
    assert ended.code == "OK"
    assert len(ended.frames_out()) == 3
    assert [e.action for e in ended.faults] == ["end stream after 3 answer(s)"]

    again = open_heartbeat(md)  # the control stands for new streams too
    for _ in range(3):
        again.beat(service_id, "a")
    with pytest.raises(StopIteration):
        again.read()


def test_end_streams_after_targets_one_instance(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a", "b")
    fake.end_streams_after(1, instance_key="a")
    a, b = open_heartbeat(md), open_heartbeat(md)
    assert a.beat(service_id, "a") > 0
    with pytest.raises(StopIteration):
        a.read()
    for _ in range(3):
        assert b.beat(service_id, "b") > 0
    assert b.close() == grpc.StatusCode.OK


@pytest.mark.parametrize("messages", [0, -1, True, 1.5])
def test_end_streams_after_rejects_nonsense(fake: FakeRegistry, messages: int) -> None:
    with pytest.raises(InvalidArgument):
        fake.end_streams_after(messages)


# --- delay and withhold answers ---------------------------------------------------


def test_delay_answers_holds_each_answer_on_the_fakes_clock(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
) -> None:
    seed(fake, service_id, "a", "b")
    fake.delay_answers(30, instance_key="a")
    slow, quick = open_heartbeat(md), open_heartbeat(md)
    beat_at = int(clock.time())
    slow.send(service_id, "a")
    fake.wait_for(lambda c: any(e.rule == "stream_control" for e in c.faults))

    fake.advance_clock(29)
    assert quick.beat(service_id, "b") == beat_at + 29 + TTL  # a round trip meanwhile
    held = stream_call(fake, "a")
    assert held.frames_out() == []

    fake.advance_clock(1)
    assert slow.read() == beat_at + TTL  # renewed on arrival, answered 30 s later
    (frame,) = [f for f in held.frames if f.direction == "out"]
    assert frame.virtual_time == beat_at + 30
    assert [e.action for e in held.faults] == ["delay answers 30s virtual"]


def test_delay_answers_in_real_time(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    fake.delay_answers(0.2, real_time=True)
    session = open_heartbeat(md)
    started = time.monotonic()
    assert session.beat(service_id, "a") > 0
    assert time.monotonic() - started >= 0.2


def test_delay_answers_rejects_non_positive(fake: FakeRegistry) -> None:
    with pytest.raises(InvalidArgument):
        fake.delay_answers(0)


def test_withhold_answers_keeps_the_stream_open_and_silent(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
) -> None:
    seed(fake, service_id, "a", "b")
    silent, talking = open_heartbeat(md), open_heartbeat(md)
    assert silent.beat(service_id, "a") > 0
    fake.withhold_answers("a")
    clock.advance(10)
    silent.send(service_id, "a")
    fake.journal.wait_for_frames("HeartbeatStream", 2, "in")
    fake.wait_for(lambda c: any(e.action == "withhold answers" for e in c.faults))
    fake.advance_clock(600)
    assert talking.beat(service_id, "b") > 0  # a round trip meanwhile
    held = stream_call(fake, "a")
    assert len(held.frames_out()) == 1
    assert not held.done
    # The beats still arrived and renewed the lease; only the answers are withheld.
    (a,) = [r for r in fake.instances(service_id) if r.instance_key == "a"]
    assert a.last_heartbeat_at == int(clock.time()) - 600

    assert fake.kill_streams("a") == 1  # a withheld stream can still be killed
    assert rpc_error(silent).code() == grpc.StatusCode.UNAVAILABLE


def test_clearing_stream_controls_releases_a_withheld_stream(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
) -> None:
    seed(fake, service_id, "a")
    session = open_heartbeat(md)
    fake.withhold_answers("a")
    session.send(service_id, "a")
    fake.wait_for(lambda c: any(e.action == "withhold answers" for e in c.faults))
    fake.clear_stream_controls()
    assert session.read() > 0  # the held answer goes out once the control is gone
    assert session.beat(service_id, "a") > 0


def test_clear_faults_drops_stream_controls(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    fake.end_streams_after(1)
    fake.withhold_answers("zzz")
    fake.answer_zero("a")
    fake.clear_faults()
    session = open_heartbeat(md)
    for _ in range(3):
        assert session.beat(service_id, "a") > 0
    assert session.close() == grpc.StatusCode.OK


def test_clear_stream_controls_leaves_fault_rules(
    fake: FakeRegistry, open_heartbeat: OpenHeartbeat, md: Metadata, service_id: int
) -> None:
    seed(fake, service_id, "a")
    fake.end_streams_after(1)
    fake.answer_zero("a")
    rule = fake.add_fault("ListServices", code="UNAVAILABLE")
    fake.clear_stream_controls()
    session = open_heartbeat(md)
    for _ in range(2):
        assert session.beat(service_id, "a") > 0
    assert rule.active
    assert [f.id for f in fake.faults()] == [rule.id]


# --- beat arrival times -----------------------------------------------------------


def test_every_beat_is_journaled_with_its_arrival_time(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service_id: int,
    clock: ManualClock,
) -> None:
    seed(fake, service_id, "a")
    session = open_heartbeat(md)
    start = clock.time()
    gaps = [0, 10, 7.5, 20]
    for count, gap in enumerate(gaps, 1):
        clock.advance(gap)
        session.send(service_id, "a")
        frames = fake.journal.wait_for_frames("HeartbeatStream", count, "in")
    arrivals = [f.virtual_time - start for f in frames]
    assert arrivals == [0, 10, 17.5, 37.5]
    request = registry_pb2.HeartbeatRequest(service_id=service_id, instance_key="a")
    assert [f.message for f in frames] == [request] * 4
    assert [session.read() for _ in gaps] == [int(start + t) + TTL for t in arrivals]
    outs = fake.journal.wait_for_frames("HeartbeatStream", 4, "out")
    assert [f.message for f in outs] == [
        registry_pb2.HeartbeatResponse(expires_at=int(start + t) + TTL) for t in arrivals
    ]
    reals = [f.real_time for f in frames]
    assert reals == sorted(reals)
    assert abs(reals[0] - time.time()) < 5
