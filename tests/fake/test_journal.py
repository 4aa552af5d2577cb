"""The call journal over real gRPC: calls, frames, fault events, waits,
``assert_called`` with near misses, and redaction of secrets.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, cast

import grpc
import pytest

from fake_registry import FakeRegistry, ManualClock
from fake_registry.journal import Call, JournalAssertionError
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

if TYPE_CHECKING:
    from tests.fake.conftest import OpenHeartbeat

CLIENT_KEY = "test-key"
CLIENT_SECRET = "test-secret-value"
Metadata = tuple[tuple[str, str], ...]
Stub = registry_pb2_grpc.RegistryServiceStub
AuthStub = user_pb2_grpc.ClientAuthServiceStub
LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
GET = "/xiaozhizhang.registry.v1.RegistryService/GetServiceByID"
AUTH = "/xiaozhizhang.user.v1.ClientAuthService/AuthenticateClient"
HEARTBEAT = "/xiaozhizhang.registry.v1.RegistryService/HeartbeatStream"


def list_services(stub: Stub, md: Metadata, project: str = "") -> None:
    stub.ListServices(registry_pb2.ListServicesRequest(project=project), metadata=md, timeout=5)


def get_service(stub: Stub, md: Metadata | None, service_id: int) -> grpc.StatusCode:
    try:
        stub.GetServiceByID(
            registry_pb2.GetServiceByIDRequest(id=service_id), metadata=md, timeout=5
        )
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return grpc.StatusCode.OK


# --- what a call records ----------------------------------------------------------


def test_a_unary_call_records_method_metadata_request_response_and_times(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, token: str, clock: ManualClock
) -> None:
    clock.advance(12)
    real_before = time.time()
    reply = registry_stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project="shop", name="cart"),
        metadata=(*md, ("x-request-id", "r-1")),
        timeout=5,
    )
    real_after = time.time()

    (call,) = fake.calls("EnsureService")
    assert call.method == "/xiaozhizhang.registry.v1.RegistryService/EnsureService"
    assert call.name == "EnsureService"
    assert call.done
    assert call.code == "OK"
    assert call.details == ""
    assert not call.streaming
    # The exact form the SDK must send, unredacted in the attribute.
    assert call.header("authorization") == f"Bearer {token}"
    assert call.header("x-request-id") == "r-1"
    assert call.header("absent") is None
    assert call.request == registry_pb2.EnsureServiceRequest(project="shop", name="cart")
    assert call.response == reply
    assert call.started_at == call.ended_at == clock.time()
    assert call.started_real is not None
    assert call.ended_real is not None
    assert real_before <= call.started_real <= call.ended_real <= real_after
    assert call.peer.startswith("ipv4:127.0.0.1:")
    assert call.frames == []
    assert call.faults == []


def test_a_failed_call_records_its_status_and_no_response(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    assert get_service(registry_stub, md, 42) == grpc.StatusCode.NOT_FOUND
    assert get_service(registry_stub, None, 42) == grpc.StatusCode.UNAUTHENTICATED
    # No waiting: the journal has the status the client already saw.
    missing, anonymous = fake.calls("GetServiceByID")
    assert (missing.code, missing.response) == ("NOT_FOUND", None)
    assert missing.details
    assert missing.request == registry_pb2.GetServiceByIDRequest(id=42)
    assert anonymous.code == "UNAUTHENTICATED"
    assert anonymous.header("authorization") is None


def test_calls_are_numbered_in_order_and_filtered_by_method(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata
) -> None:
    list_services(registry_stub, md)
    get_service(registry_stub, md, 1)
    list_services(registry_stub, md, project="p")
    every = fake.calls()
    assert [c.seq for c in every] == [1, 2, 3, 4]  # 1 is the token fixture's call
    assert [c.name for c in every] == [
        "AuthenticateClient",
        "ListServices",
        "GetServiceByID",
        "ListServices",
    ]
    for form in ("ListServices", "RegistryService/ListServices", LIST):
        assert [c.seq for c in fake.calls(form)] == [2, 4]
    assert [c.seq for c in fake.calls("*")] == [1, 2, 3, 4]
    assert fake.calls("Services") == []
    assert [c.seq for c in fake.calls(AUTH)] == [1]


def test_a_stream_records_every_frame_with_its_times(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service: registry_pb2.Service,
    clock: ManualClock,
) -> None:
    fake.register_instance(service.id, "a", ttl_seconds=30)
    session = open_heartbeat(md)
    start = clock.time()
    assert session.beat(service.id, "a") == int(start) + 30
    clock.advance(10)
    assert session.beat(service.id, "ghost") == 0
    assert session.close() == grpc.StatusCode.OK

    (call,) = fake.wait_for("HeartbeatStream")
    assert call.streaming
    assert call.request is None
    assert call.response is None
    assert call.code == "OK"
    assert call.started_at == start
    assert call.ended_at == start + 10
    assert [(f.direction, f.virtual_time - start) for f in call.frames] == [
        ("in", 0),
        ("out", 0),
        ("in", 10),
        ("out", 10),
    ]
    assert call.frames_in() == [
        registry_pb2.HeartbeatRequest(service_id=service.id, instance_key="a"),
        registry_pb2.HeartbeatRequest(service_id=service.id, instance_key="ghost"),
    ]
    assert call.frames_out() == [
        registry_pb2.HeartbeatResponse(expires_at=int(start) + 30),
        registry_pb2.HeartbeatResponse(expires_at=0),
    ]
    reals = [f.real_time for f in call.frames]
    assert reals == sorted(reals)
    assert "Frame(in {service_id: " in repr(call.frames[0])


def test_fault_events_sit_beside_the_calls_they_touched(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    first = fake.add_fault("ListServices", code="UNAVAILABLE", times=1)
    second = fake.add_fault("GetServiceByID", code="INTERNAL", times=1)
    with pytest.raises(grpc.RpcError):
        list_services(registry_stub, md)
    assert get_service(registry_stub, md, 1) == grpc.StatusCode.INTERNAL
    list_services(registry_stub, md)
    assert get_service(registry_stub, md, 1) == grpc.StatusCode.NOT_FOUND

    events = fake.journal.events()
    assert [(e.rule, e.action) for e in events] == [
        (f"fault#{first.id}", "abort UNAVAILABLE"),
        (f"fault#{second.id}", "abort INTERNAL"),
    ]
    by_seq = {c.seq: c for c in fake.calls()}
    for event in events:
        assert event.call_seq is not None
        assert by_seq[event.call_seq].faults == [event]
        assert event.virtual_time == fake.now()
    touched = {e.call_seq for e in events}
    assert all(c.faults == [] for c in fake.calls() if c.seq not in touched)
    assert repr(events[0]) == (
        f"FaultEvent(fault#{first.id}: abort UNAVAILABLE on call #{events[0].call_seq})"
    )


# --- waiting --------------------------------------------------------------------


def test_wait_for_blocks_until_enough_calls_finished(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    fake.add_fault("ListServices", delay=5, times=1)
    future = registry_stub.ListServices.future(
        registry_pb2.ListServicesRequest(), metadata=md, timeout=5
    )
    # A predicate sees calls in flight; a method name waits for finished ones.
    (held,) = fake.wait_for(lambda c: c.name == "ListServices")
    assert not held.done
    with pytest.raises(TimeoutError, match="ListServices"):
        fake.wait_for("ListServices", timeout=0.01)

    released: list[list[Call]] = []
    waiter = threading.Thread(
        target=lambda: released.append(fake.wait_for("ListServices", count=2, timeout=5))
    )
    waiter.start()
    fake.advance_clock(5)
    future.result(timeout=5)
    list_services(registry_stub, md)
    waiter.join(timeout=5)
    assert not waiter.is_alive()
    ((one, two),) = released
    assert (one.code, two.code) == ("OK", "OK")
    assert one is held


def test_wait_for_returns_the_first_count_matches(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    for project in ("a", "b", "c"):
        list_services(registry_stub, md, project=project)
    calls = fake.wait_for("ListServices", count=2)
    assert [c.request for c in calls] == [
        registry_pb2.ListServicesRequest(project="a"),
        registry_pb2.ListServicesRequest(project="b"),
    ]


def test_wait_for_timeout_lists_recent_calls_redacted(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, token: str
) -> None:
    list_services(registry_stub, md)
    with pytest.raises(TimeoutError) as excinfo:
        fake.wait_for("GetServiceByID", count=1, timeout=0.01)
    message = str(excinfo.value)
    assert "got 0" in message
    assert "ListServices -> OK" in message
    assert "AuthenticateClient -> OK" in message
    assert token not in message
    assert CLIENT_SECRET not in message


def test_wait_for_frames_counts_frames_in_one_direction(
    fake: FakeRegistry,
    open_heartbeat: OpenHeartbeat,
    md: Metadata,
    service: registry_pb2.Service,
) -> None:
    fake.register_instance(service.id, "a")
    session = open_heartbeat(md)
    session.send(service.id, "a")
    session.send(service.id, "a")
    frames = fake.journal.wait_for_frames("HeartbeatStream", 2, "in")
    assert [f.direction for f in frames] == ["in", "in"]
    outs = fake.journal.wait_for_frames(HEARTBEAT, 2, "out")
    assert all(f.message != registry_pb2.HeartbeatResponse(expires_at=0) for f in outs)
    with pytest.raises(TimeoutError, match="3 'in' frame"):
        fake.journal.wait_for_frames("HeartbeatStream", 3, "in", timeout=0.01)


# --- assert_called --------------------------------------------------------------


def test_assert_called_matches_code_metadata_request_and_times(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, token: str
) -> None:
    list_services(registry_stub, md, project="shop")
    list_services(registry_stub, md, project="shop")
    list_services(registry_stub, md, project="other")
    matched = fake.assert_called(
        "ListServices",
        times=2,
        code="OK",
        metadata={"authorization": f"Bearer {token}"},
        request={"project": "shop"},
    )
    assert [c.request for c in matched] == [registry_pb2.ListServicesRequest(project="shop")] * 2
    assert len(fake.assert_called("ListServices")) == 3
    fake.assert_called("AuthenticateClient", times=1, request={"client_key": CLIENT_KEY})


def test_assert_called_failure_lists_the_near_misses_with_reasons(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    list_services(registry_stub, md, project="shop")
    get_service(registry_stub, md, 7)
    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called("ListServices", request={"project": "pets"})
    message = str(excinfo.value)
    assert "expected at least 1 call(s) to ListServices matching, found 0" in message
    assert "near misses:" in message
    assert "request.project='shop' != 'pets'" in message
    assert "GetServiceByID" not in message  # only calls to that method are near misses

    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called("ListServices", times=2)
    assert "expected exactly 2" in str(excinfo.value)

    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called("GetServiceByID", code="OK")
    assert "code NOT_FOUND != OK" in str(excinfo.value)


def test_assert_called_on_a_method_never_called_lists_every_call(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    list_services(registry_stub, md)
    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called("RegisterInstance")
    message = str(excinfo.value)
    assert "no finished call to that method; all calls:" in message
    assert "#2 ListServices -> OK" in message
    assert "#1 AuthenticateClient -> OK" in message


def test_assertion_messages_and_reprs_never_show_tokens_or_secrets(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata, token: str
) -> None:
    list_services(registry_stub, (("authorization", f"bearer {token}"), ("token", token)))
    reply = auth_stub.AuthenticateClient(
        user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
        timeout=5,
    )
    texts = [repr(c) for c in fake.calls()]
    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called(
            "ListServices",
            metadata={"authorization": f"Bearer {token}", "token": "other-token-value"},
        )
    texts.append(str(excinfo.value))
    with pytest.raises(JournalAssertionError) as excinfo:
        fake.assert_called("AuthenticateClient", request={"client_secret": "guessed-secret"})
    texts.append(str(excinfo.value))
    with pytest.raises(TimeoutError) as timeout:
        fake.wait_for("RenewToken", timeout=0.01)
    texts.append(str(timeout.value))

    for text in texts:
        for secret in (token, reply.access_token, CLIENT_SECRET, "guessed-secret"):
            assert secret not in text
        assert "other-token-value" not in text
    assert "<redacted>" in texts[0]
    assert "metadata authorization=<redacted>" in texts[-3]
    assert "request.client_secret=<redacted>" in texts[-2]
    # The real values stay readable for exact assertions.
    (listed,) = fake.calls("ListServices")
    assert listed.header("authorization") == f"bearer {token}"
    assert listed.header("token") == token
    auth_call = fake.calls("AuthenticateClient")[-1]
    assert auth_call.request is not None
    assert auth_call.request.client_secret == CLIENT_SECRET  # type: ignore[attr-defined]
    assert auth_call.response is not None
    assert auth_call.response.access_token == reply.access_token  # type: ignore[attr-defined]


# --- lifecycle ------------------------------------------------------------------


def test_reset_clears_the_journal_and_numbering_restarts(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    fake.add_fault("ListServices", code="UNAVAILABLE", times=1)
    with pytest.raises(grpc.RpcError):
        list_services(registry_stub, md)
    assert fake.calls()
    assert fake.journal.events()
    fake.reset()
    assert fake.calls() == []
    assert fake.journal.events() == []
    list_services(registry_stub, md)
    (call,) = fake.calls()
    assert call.seq == 1
    assert call.faults == []


def test_a_disabled_journal_records_nothing_and_calls_still_work(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    before = len(fake.calls())
    fake.journal.enabled = False
    try:
        fake.add_fault("GetServiceByID", code="UNAVAILABLE", times=1)
        assert get_service(registry_stub, md, 1) == grpc.StatusCode.UNAVAILABLE
        list_services(registry_stub, md)
        assert len(fake.calls()) == before
    finally:
        fake.journal.enabled = True
    list_services(registry_stub, md)
    assert len(fake.calls()) == before + 1
