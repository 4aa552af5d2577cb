"""Fault rules over real gRPC (CONTRACT 5.5): each fault happens exactly as
specified, to exactly the calls it matches, for exactly its lifetime, and is
journaled beside the calls it touched.

Virtual delays are released with ``fake.advance_clock``; real-time deadlines
appear only where a fault must hit a client deadline (drop, real delays).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import cast

import grpc
import pytest

from fake_registry import FakeRegistry, InvalidArgument, ManualClock
from fake_registry.faults import Abort, Delay, Drop
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

CLIENT_KEY = "test-key"
CLIENT_SECRET = "test-secret-value"
Metadata = tuple[tuple[str, str], ...]
Stub = registry_pb2_grpc.RegistryServiceStub
AuthStub = user_pb2_grpc.ClientAuthServiceStub
OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INTERNAL = grpc.StatusCode.INTERNAL
DEADLINE_EXCEEDED = grpc.StatusCode.DEADLINE_EXCEEDED
LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
GET = "/xiaozhizhang.registry.v1.RegistryService/GetServiceByID"


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return OK


def failure_of(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()
    error = cast(grpc.Call, excinfo.value)
    return error.code(), error.details() or ""


def list_services(stub: Stub, md: Metadata | None, timeout: float = 5) -> object:
    return stub.ListServices(registry_pb2.ListServicesRequest(), metadata=md, timeout=timeout)


def list_status(stub: Stub, md: Metadata | None, timeout: float = 5) -> grpc.StatusCode:
    return status_of(lambda: list_services(stub, md, timeout))


def get_status(stub: Stub, md: Metadata) -> grpc.StatusCode:
    return status_of(
        lambda: stub.GetServiceByID(
            registry_pb2.GetServiceByIDRequest(id=1), metadata=md, timeout=5
        )
    )


def auth_status(stub: AuthStub) -> grpc.StatusCode:
    return status_of(
        lambda: stub.AuthenticateClient(
            user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
            timeout=5,
        )
    )


# --- abort: lifetimes ---------------------------------------------------------


def test_abort_once_hits_exactly_the_next_matching_call(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata
) -> None:
    handle = fake.add_fault("ListServices", code="UNAVAILABLE", details="try later", times=1)
    assert [f.active for f in fake.faults()] == [True]
    assert get_status(registry_stub, md) == grpc.StatusCode.NOT_FOUND  # other methods untouched
    assert auth_status(auth_stub) == OK
    assert failure_of(lambda: list_services(registry_stub, md)) == (UNAVAILABLE, "try later")
    assert [list_status(registry_stub, md) for _ in range(3)] == [OK, OK, OK]
    assert handle.hits == 1
    assert not handle.active
    assert [f.id for f in fake.faults()] == [handle.id]  # spent rules stay listed

    # Journaled: one event, beside the one call it touched, and only there.
    (event,) = fake.journal.events()
    (touched,) = fake.assert_called("ListServices", code="UNAVAILABLE", times=1)
    assert touched.faults == [event]
    assert event.call_seq == touched.seq
    assert event.rule == f"fault#{handle.id}"
    assert event.action == "abort UNAVAILABLE"
    assert touched.details == "try later"
    assert all(c.faults == [] for c in fake.calls() if c is not touched)


def test_the_journal_has_the_failed_call_finished_when_the_client_sees_the_status(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    fake.add_fault("ListServices", code="DATA_LOSS")
    for attempt in range(1, 21):
        assert list_status(registry_stub, md) == grpc.StatusCode.DATA_LOSS
        # No wait: the status the client saw is already in the journal.
        fake.assert_called("ListServices", code="DATA_LOSS", times=attempt)


@pytest.mark.parametrize("times", [2, 5])
def test_abort_n_times_then_the_rule_is_spent(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, times: int
) -> None:
    handle = fake.fail_next("ListServices", "INTERNAL", times=times)
    statuses = [list_status(registry_stub, md) for _ in range(times + 3)]
    assert statuses == [INTERNAL] * times + [OK] * 3
    assert handle.hits == times
    assert not handle.active
    fake.wait_for("ListServices", count=times + 3)
    assert len(fake.journal.events()) == times
    assert [bool(c.faults) for c in fake.calls("ListServices")] == [True] * times + [False] * 3


def test_abort_always_until_removed(fake: FakeRegistry, registry_stub: Stub, md: Metadata) -> None:
    handle = fake.add_fault("ListServices", code=grpc.StatusCode.UNAVAILABLE)
    assert [list_status(registry_stub, md) for _ in range(6)] == [UNAVAILABLE] * 6
    assert [f.active for f in fake.faults()] == [True]  # "always" never runs out
    assert handle.hits == 6
    handle.remove()
    assert not handle.active
    assert fake.faults() == []
    assert list_status(registry_stub, md) == OK
    assert handle.hits == 6


def test_clear_faults_removes_every_rule(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata
) -> None:
    handles = [
        fake.add_fault("ListServices", code="UNAVAILABLE"),
        fake.add_fault("AuthenticateClient", code="INTERNAL"),
    ]
    assert list_status(registry_stub, md) == UNAVAILABLE
    assert auth_status(auth_stub) == INTERNAL
    fake.clear_faults()
    assert fake.faults() == []
    assert not any(h.active for h in handles)
    assert list_status(registry_stub, md) == OK
    assert auth_status(auth_stub) == OK


def test_sequence_fires_its_actions_in_order_then_ends(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    handle = fake.add_fault(
        "ListServices",
        sequence=[
            Abort("unavailable"),  # case-insensitive, as everywhere in the control API
            Delay(0),
            Abort("RESOURCE_EXHAUSTED", "slow down"),
            Abort("INTERNAL"),
        ],
    )
    statuses = [list_status(registry_stub, md) for _ in range(6)]
    assert statuses == [
        UNAVAILABLE,
        OK,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        INTERNAL,
        OK,
        OK,
    ]
    assert handle.hits == 4
    assert not handle.active
    fake.wait_for("ListServices", count=6)
    actions = [[e.action for e in c.faults] for c in fake.calls("ListServices")]
    assert actions == [
        ["abort UNAVAILABLE"],
        ["delay 0s virtual"],
        ["abort RESOURCE_EXHAUSTED"],
        ["abort INTERNAL"],
        [],
        [],
    ]
    assert fake.errors.take() == []


def test_seeded_probability_is_repeatable_and_follows_the_seed(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    seed, chance, calls = 1234, 0.5, 24
    rng = random.Random(seed)
    expected = [UNAVAILABLE if rng.random() < chance else OK for _ in range(calls)]
    assert UNAVAILABLE in expected
    assert OK in expected

    for _ in range(2):  # the same seed gives the same run
        fake.clear_faults()
        handle = fake.add_fault("ListServices", code="UNAVAILABLE", probability=chance, seed=seed)
        assert [list_status(registry_stub, md) for _ in range(calls)] == expected
        assert handle.hits == expected.count(UNAVAILABLE)


def test_probability_with_times_counts_only_fired_calls(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    handle = fake.add_fault("ListServices", code="INTERNAL", probability=0.3, seed=7, times=2)
    statuses = [list_status(registry_stub, md) for _ in range(40)]
    assert statuses.count(INTERNAL) == 2
    assert handle.hits == 2
    assert not handle.active


def test_a_rule_that_does_not_fire_lets_the_next_rule_try(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    seed, chance = 99, 0.4
    rng = random.Random(seed)
    expected = [UNAVAILABLE if rng.random() < chance else INTERNAL for _ in range(20)]
    fake.add_fault("ListServices", code="UNAVAILABLE", probability=chance, seed=seed)
    fake.add_fault("ListServices", code="INTERNAL")
    assert [list_status(registry_stub, md) for _ in range(20)] == expected


def test_the_first_matching_active_rule_wins(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    first = fake.add_fault("ListServices", code="UNAVAILABLE", times=1)
    second = fake.add_fault("*", code="INTERNAL", times=2)
    assert [list_status(registry_stub, md) for _ in range(4)] == [
        UNAVAILABLE,
        INTERNAL,
        INTERNAL,
        OK,
    ]
    assert (first.hits, second.hits) == (1, 2)


# --- matching -------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        "ListServices",
        "RegistryService/ListServices",
        "xiaozhizhang.registry.v1.RegistryService/ListServices",
        LIST,
    ],
)
def test_method_forms_match_exactly_that_method(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata, pattern: str
) -> None:
    fake.add_fault(pattern, code="UNAVAILABLE")
    assert list_status(registry_stub, md) == UNAVAILABLE
    assert get_status(registry_stub, md) == grpc.StatusCode.NOT_FOUND
    assert auth_status(auth_stub) == OK


@pytest.mark.parametrize("pattern", ["Services", "stServices", "listservices", "Registry"])
def test_partial_names_match_nothing(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, pattern: str
) -> None:
    handle = fake.add_fault(pattern, code="UNAVAILABLE")
    assert list_status(registry_stub, md) == OK
    assert handle.hits == 0


def test_star_matches_every_method(
    fake: FakeRegistry, registry_stub: Stub, auth_stub: AuthStub, md: Metadata
) -> None:
    handle = fake.add_fault("*", code="UNAVAILABLE")
    assert list_status(registry_stub, md) == UNAVAILABLE
    assert get_status(registry_stub, md) == UNAVAILABLE
    assert auth_status(auth_stub) == UNAVAILABLE
    assert handle.hits == 3


def test_metadata_narrows_a_rule_to_calls_carrying_those_headers(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    handle = fake.add_fault(
        "ListServices", code="UNAVAILABLE", metadata={"x-tenant": "blue", "x-zone": "a"}
    )
    blue_a = (*md, ("x-tenant", "blue"), ("x-zone", "a"))
    blue_b = (*md, ("x-tenant", "blue"), ("x-zone", "b"))
    red_a = (*md, ("x-tenant", "red"), ("x-zone", "a"))
    assert list_status(registry_stub, blue_a) == UNAVAILABLE
    assert list_status(registry_stub, blue_b) == OK
    assert list_status(registry_stub, red_a) == OK
    assert list_status(registry_stub, md) == OK
    assert list_status(registry_stub, blue_a) == UNAVAILABLE
    assert handle.hits == 2
    fake.wait_for("ListServices", count=5)
    assert [bool(c.faults) for c in fake.calls("ListServices")] == [True, False, False, False, True]


def test_faults_act_before_auth(fake: FakeRegistry, registry_stub: Stub) -> None:
    fake.add_fault("ListServices", code="UNAVAILABLE", times=1)
    assert list_status(registry_stub, None) == UNAVAILABLE  # no token, still the fault
    assert list_status(registry_stub, None) == grpc.StatusCode.UNAUTHENTICATED


# --- delay ----------------------------------------------------------------------


def test_a_virtual_delay_holds_the_call_until_the_clock_has_moved(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata, clock: ManualClock
) -> None:
    handle = fake.add_fault("ListServices", delay=30, times=1)
    started = clock.time()
    future = registry_stub.ListServices.future(
        registry_pb2.ListServicesRequest(), metadata=md, timeout=5
    )
    (held,) = fake.wait_for(lambda c: c.name == "ListServices" and bool(c.faults))
    assert [e.action for e in held.faults] == ["delay 30s virtual"]

    fake.advance_clock(29)
    assert get_status(registry_stub, md) == grpc.StatusCode.NOT_FOUND  # a round trip
    assert not future.done()
    assert not held.done

    fake.advance_clock(1)
    assert future.result(timeout=5).total == 0
    assert handle.hits == 1
    (done,) = fake.wait_for(lambda c: c is held and c.done)
    assert done.code == "OK"
    assert done.started_at == started
    assert done.ended_at == started + 30
    assert list_status(registry_stub, md) == OK  # once: the next call is not held


def test_a_virtual_delay_is_not_released_by_real_time(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    fake.add_fault("ListServices", delay=0.05)
    started = time.monotonic()
    assert list_status(registry_stub, md, timeout=0.3) == DEADLINE_EXCEEDED
    assert time.monotonic() - started >= 0.3


def test_a_real_time_delay_holds_the_call_in_real_seconds(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    fake.add_fault("ListServices", delay=0.2, real_time=True)
    started = time.monotonic()
    assert list_status(registry_stub, md) == OK
    assert time.monotonic() - started >= 0.2
    assert list_status(registry_stub, md, timeout=0.05) == DEADLINE_EXCEEDED
    (_, cut) = fake.wait_for("ListServices", count=2)
    assert cut.code == "DEADLINE_EXCEEDED"
    assert [e.action for e in cut.faults] == ["delay 0.2s real"]


def test_abort_after_a_virtual_delay(fake: FakeRegistry, registry_stub: Stub, md: Metadata) -> None:
    fake.add_fault("ListServices", code="UNAVAILABLE", delay=10, times=1)
    future = registry_stub.ListServices.future(
        registry_pb2.ListServicesRequest(), metadata=md, timeout=5
    )
    fake.wait_for(lambda c: bool(c.faults))
    fake.advance_clock(10)
    assert future.code() == UNAVAILABLE
    assert list_status(registry_stub, md) == OK


# --- drop -----------------------------------------------------------------------


def test_drop_holds_the_call_until_the_client_deadline(
    fake: FakeRegistry, registry_stub: Stub, md: Metadata
) -> None:
    handle = fake.add_fault("GetServiceByID", drop=True, times=1)
    started = time.monotonic()
    future = registry_stub.GetServiceByID.future(
        registry_pb2.GetServiceByIDRequest(id=1), metadata=md, timeout=0.2
    )
    fake.wait_for(lambda c: bool(c.faults))
    fake.advance_clock(600)  # a drop is not a delay: moving time releases nothing
    assert future.code() == DEADLINE_EXCEEDED
    assert time.monotonic() - started >= 0.2
    assert get_status(registry_stub, md) == grpc.StatusCode.NOT_FOUND
    assert handle.hits == 1
    (dropped, _) = fake.wait_for("GetServiceByID", count=2)
    assert dropped.code == "DEADLINE_EXCEEDED"
    assert [e.action for e in dropped.faults] == ["drop"]


def test_drop_in_a_sequence(fake: FakeRegistry, auth_stub: AuthStub) -> None:
    fake.add_fault("AuthenticateClient", sequence=[Drop(), Abort("UNAVAILABLE")])
    request = user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET)
    assert status_of(lambda: auth_stub.AuthenticateClient(request, timeout=0.1)) == (
        DEADLINE_EXCEEDED
    )
    assert auth_status(auth_stub) == UNAVAILABLE
    assert auth_status(auth_stub) == OK


# --- validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # no action
        {"code": "OK"},
        {"code": "NOPE"},
        {"code": "UNAVAILABLE", "times": 0},
        {"code": "UNAVAILABLE", "probability": 0},
        {"code": "UNAVAILABLE", "probability": 1.5},
        {"delay": -1},
        {"code": "UNAVAILABLE", "sequence": [Abort("INTERNAL")]},
        {"sequence": []},
        {"sequence": [Abort("OK")]},
    ],
)
def test_add_fault_rejects_nonsense(fake: FakeRegistry, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument):
        fake.add_fault("ListServices", **kwargs)  # type: ignore[arg-type]
    assert fake.faults() == []


def test_add_fault_needs_a_method(fake: FakeRegistry) -> None:
    with pytest.raises(InvalidArgument):
        fake.add_fault("", code="UNAVAILABLE")


def test_handles_describe_their_rule(fake: FakeRegistry) -> None:
    handle = fake.add_fault("ListServices", code="UNAVAILABLE", times=2)
    assert repr(handle) == (
        f"FaultHandle(fault#{handle.id} ListServices: abort UNAVAILABLE (2 time(s), hits=0))"
    )
    assert [f.id for f in fake.faults()] == [handle.id]


def test_stopping_the_fake_ends_a_call_held_by_a_virtual_delay(
    fake: FakeRegistry, auth_stub: AuthStub
) -> None:
    fake.add_fault("AuthenticateClient", delay=30)
    held = auth_stub.AuthenticateClient.future(
        user_pb2.AuthenticateClientRequest(client_key=CLIENT_KEY, client_secret=CLIENT_SECRET),
        timeout=5,
    )
    fake.wait_for(lambda c: bool(c.faults))
    fake.stop()
    (call,) = fake.calls("AuthenticateClient")
    assert (call.code, call.details) == ("UNAVAILABLE", "the fake is shutting down")
    with pytest.raises(grpc.RpcError) as ended:
        held.result()
    assert ended.value.code() is grpc.StatusCode.UNAVAILABLE
