"""sdk.registration end to end against the in-process fake, in virtual time (G1-G5, G9).

Every scenario runs on both flavours (``[sync]`` / ``[async]``, ``make_client`` in
``tests/flavours.py``): the sync ``Registration`` and, through a blocking view, the
``AsyncRegistration`` of ``sdk.aio`` (its asyncio-only scenarios, cancellation among them,
are in ``tests/sdk_aio/test_aio_registration.py``).

One ManualClock is shared by the fake and the client. The registration's loop (a thread,
or a task on the view's loop thread: ``ManualClock.waiting`` counts it) is the only waiter
on the clock, so ``clock.wait_blocked(1)`` means "it is idle now" and
``clock.next_deadline()`` is its next wake-up. Effects are awaited with bounded waits
(``Registration.wait_*``, journal waits, an ``on_event`` recorder), never sleeps.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator

import pytest

from fake_registry import FakeRegistry
from sdk import Client, Config, NotFound
from sdk._registration_base import RegistrationBase
from sdk.registration import LeaseEvent, LeaseState, Reason, Registration
from sdk.testing import ManualClock
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import MakeClient, eventually, start_registration, unwrapped
from tests.lease_events import Recorder

HOST = "10.0.0.7"


@pytest.fixture
def clock() -> ManualClock:
    """The SDK's ManualClock (it has wait_blocked), shared with the fake through conftest."""
    return ManualClock()


def make(make_client: MakeClient, fake: FakeRegistry, clock: ManualClock) -> Client:
    """A client of the test's flavour for the fake, on the shared clock."""
    client: Client = make_client(Config(fake.address, CLIENT_KEY, CLIENT_SECRET), clock=clock)
    return client


@pytest.fixture
def client(fake: FakeRegistry, clock: ManualClock, make_client: MakeClient) -> Iterator[Client]:
    c = make(make_client, fake, clock)
    try:
        yield c
    finally:
        c.close()  # before the fake stops: the registrations deregister


@pytest.fixture
def service_id(fake: FakeRegistry) -> int:
    return fake.ensure_service("shop", "cart").id


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def advance_to_next(clock: ManualClock) -> float:
    """Once the loop waits, move virtual time to exactly its deadline; return the step."""
    assert clock.wait_blocked(1, timeout=5)
    deadline = clock.next_deadline()
    assert deadline is not None
    step = max(deadline - clock.monotonic(), 0.0)
    clock.advance(step)
    return step


def beat(clock: ManualClock, reg: Registration) -> None:
    """Run the next beat and wait until its answer (and whatever it caused) was handled."""
    answered = reg.answers
    advance_to_next(clock)
    assert reg.wait_answers(answered + 1), reg.events


def online_keys(fake: FakeRegistry, service_id: int) -> set[str]:
    return {i.instance_key for i in fake.instances(service_id, online=True)}


def test_registers_and_beats_every_third_of_the_ttl_on_one_stream(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int
) -> None:
    meta = {"zone": "a", "tags": ["x"]}
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", grpc_port=9000,
        ttl_seconds=3, meta=meta,
    )  # fmt: skip
    try:
        assert reg.state is LeaseState.BEATING
        assert reg.instance_key == "i-1"
        assert reg.interval == 1.0  # G3: ttl / 3, no 10 s floor
        start = clock.time()
        for _ in range(5):
            beat(clock, reg)
            assert online_keys(fake, service_id) == {"i-1"}
        streams = fake.journal.calls("HeartbeatStream")
        assert len(streams) == 1  # G5: one long-lived stream
        beats = [f for f in streams[0].frames if f.direction == "in"]
        # G3: the first beat after one interval, not a full TTL
        assert [f.virtual_time - start for f in beats] == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert [f.message.instance_key for f in beats] == ["i-1"] * 5
        assert reg.expires_at == int(start) + 5 + 3
        assert online_keys(fake, service_id) == {"i-1"}
        (call,) = fake.journal.assert_called("RegisterInstance", times=1, code="OK")
        assert call.request.env == "dev"  # G14: env from the config
        assert call.request.endpoint == f"{HOST}:9000"
        assert meta == {"zone": "a", "tags": ["x"]}  # the caller's value is untouched
    finally:
        reg.stop()
    assert reg.state is LeaseState.STOPPED
    assert online_keys(fake, service_id) == set()


def test_answer_zero_re_registers_with_the_same_key(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int, recorder: Recorder
) -> None:
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3,
        on_event=recorder,
    )  # fmt: skip
    beat(clock, reg)
    fake.answer_zero("i-1")
    beat(clock, reg)  # answered 0 (G1): re-registered at once
    fake.answer_zero("i-1", enabled=False)
    registers = fake.journal.assert_called("RegisterInstance", times=2, code="OK")
    assert [c.request.instance_key for c in registers] == ["i-1", "i-1"]
    assert registers[1].request.host == HOST  # with the last data
    assert recorder.of(Reason.LEASE_ZERO)
    assert recorder.of(Reason.SAME_KEY)
    beat(clock, reg)
    assert reg.state is LeaseState.BEATING
    assert reg.instance_key == "i-1"
    assert reg.expires_at > 0
    assert online_keys(fake, service_id) == {"i-1"}
    reg.stop()


def test_instance_deleted_on_the_server_is_re_registered_within_one_interval(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int
) -> None:
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=6
    )
    beat(clock, reg)
    fake.delete_instance(service_id, "i-1")
    assert online_keys(fake, service_id) == set()
    before = clock.monotonic()
    beat(clock, reg)
    assert clock.monotonic() - before <= reg.interval
    assert online_keys(fake, service_id) == {"i-1"}
    fake.journal.assert_called("RegisterInstance", times=2, code="OK")
    reg.stop()


def test_re_register_quirk_falls_back_to_a_fresh_key_with_a_warning(
    fake: FakeRegistry,
    clock: ManualClock,
    client: Client,
    service_id: int,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.set_reregister_quirk(True)
    first = start_registration(
        client, service_id=service_id, host=HOST, instance_key="fixed", ttl_seconds=3
    )
    first.stop()  # deregisters: the row is soft-deleted
    caplog.set_level(logging.INFO, logger="sdk.registration")
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="fixed", ttl_seconds=3,
        on_event=recorder,
    )  # fmt: skip
    beat(clock, reg)  # 0: re-register the same key (the hidden row again)
    beat(clock, reg)  # 0 again after a fresh re-register: the quirk -> a new key
    (new_key,) = recorder.wait_for(Reason.NEW_KEY)
    assert new_key.detail == "fixed"
    assert reg.instance_key not in ("", "fixed")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("new_key" in r.getMessage() for r in warnings)
    beat(clock, reg)
    assert reg.state is LeaseState.BEATING
    assert reg.instance_key in online_keys(fake, service_id)
    reg.stop()


def test_killed_streams_back_off_with_growing_jittered_delays_and_the_lease_holds(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int, recorder: Recorder
) -> None:
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder, rng=random.Random(7),
    )  # fmt: skip
    beat(clock, reg)  # the stream has carried the key: kill_streams can find it
    fake.reject_streams("UNAVAILABLE", times=4)  # the next four reopens fail too
    assert fake.kill_streams("i-1") == 1
    delays = []
    for attempt in range(5):
        (*_, backing_off) = recorder.wait_for(Reason.STREAM_FAILED, attempt + 1)
        assert backing_off.state is LeaseState.BACKING_OFF
        assert backing_off.detail == "UNAVAILABLE"
        assert online_keys(fake, service_id) == {"i-1"}  # never lapses
        advance_to_next(clock)
        (*_, reopen) = recorder.wait_for(Reason.REOPEN, attempt + 1)
        delays.append(reopen.at - backing_off.at)
    check = random.Random(7)
    expected = [check.random() * ceiling for ceiling in (1, 2, 4, 8, 16)]
    assert delays == pytest.approx(expected)  # G4: full jitter under 1, 2, 4, 8, 16 s
    assert len(set(delays)) == 5
    fake.journal.wait_for(lambda call: call.name == "HeartbeatStream", 6)  # 1 + 5 reopens
    beat(clock, reg)  # the sixth stream works: back to beating
    assert reg.wait_state(LeaseState.BEATING)
    assert online_keys(fake, service_id) == {"i-1"}
    reg.stop()


def test_wipe_with_ensure_re_creates_the_service_and_re_registers(
    fake: FakeRegistry, clock: ManualClock, client: Client, recorder: Recorder
) -> None:
    reg = start_registration(
        client, service_id=0, host=HOST, instance_key="i-1", ttl_seconds=3,
        ensure=("shop", "cart"), on_event=recorder,
    )  # fmt: skip
    first_id = reg.service_id
    assert first_id > 0
    beat(clock, reg)
    fake.wipe()
    beat(clock, reg)  # 0 -> re-register -> NOT_FOUND -> EnsureService -> register
    assert len(fake.journal.calls("EnsureService")) == 2
    assert online_keys(fake, reg.service_id) == {"i-1"}
    beat(clock, reg)
    assert reg.state is LeaseState.BEATING
    reg.stop()


def test_registry_restart_without_state_recovers_with_ensure(
    fake: FakeRegistry, clock: ManualClock, client: Client
) -> None:
    reg = start_registration(
        client, service_id=0, host=HOST, instance_key="i-1", ttl_seconds=3,
        ensure=("shop", "cart"),
    )  # fmt: skip
    beat(clock, reg)
    fake.restart(keep_state=False)
    # The stream dies with the server, reopens after a backoff (a channel still reconnecting
    # may fail it again), then a beat answers 0 and the service is ensured again.
    deadline = time.monotonic() + 20
    while reg.instance_key not in online_keys(fake, reg.service_id) or fake.services() == []:
        assert time.monotonic() < deadline, reg.events
        advance_to_next(clock)
        reg.wait_answers(reg.answers + 1, timeout=0.5)
    assert reg.wait_registered()
    reg.stop()


def test_wipe_without_ensure_keeps_retrying_with_not_found(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int, recorder: Recorder
) -> None:
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3,
        on_event=recorder,
    )  # fmt: skip
    beat(clock, reg)
    fake.wipe()
    beat(clock, reg)
    (failed,) = recorder.wait_for(Reason.REGISTER_FAILED)
    assert failed.detail == "NOT_FOUND"
    assert reg.state is LeaseState.RE_REGISTERING
    assert isinstance(reg.last_error, NotFound)
    advance_to_next(clock)  # a backoff later it tries again, and fails again
    recorder.wait_for(Reason.REGISTER_FAILED, 2)
    assert reg.stop()
    assert reg.state is LeaseState.STOPPED


def test_stop_during_backoff_returns_at_once_and_deregisters(
    fake: FakeRegistry, clock: ManualClock, client: Client, service_id: int, recorder: Recorder
) -> None:
    reg = start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder,
    )  # fmt: skip
    beat(clock, reg)
    fake.reject_streams("UNAVAILABLE")
    assert fake.kill_streams("i-1") == 1
    recorder.wait_for(Reason.STREAM_FAILED)
    assert clock.wait_blocked(1)
    assert reg.state is LeaseState.BACKING_OFF
    started = time.monotonic()
    assert reg.stop()
    assert time.monotonic() - started < 1.0  # G4: no uninterruptible sleep
    assert reg.state is LeaseState.STOPPED
    fake.journal.assert_called(
        "DeregisterInstance", times=1, code="OK", request={"instance_key": "i-1"}
    )
    assert fake.instances(service_id) == []
    assert reg.stop()  # idempotent: nothing more happens
    fake.journal.assert_called("DeregisterInstance", times=1)
    assert clock.blocked == 0  # nothing of ours waits on the clock any more


def test_stop_without_deregister_leaves_the_lease_to_lapse(
    fake: FakeRegistry, client: Client, service_id: int
) -> None:
    reg = start_registration(client, service_id=service_id, host=HOST, instance_key="i-1")
    assert reg.stop(deregister=False)
    assert fake.journal.calls("DeregisterInstance") == []
    assert online_keys(fake, service_id) == {"i-1"}
    assert not reg.wait_registered(timeout=0.01)  # stopped: never beating again


def test_client_close_stops_and_deregisters(
    fake: FakeRegistry, clock: ManualClock, service_id: int, make_client: MakeClient
) -> None:
    client = make(make_client, fake, clock)
    reg = start_registration(client, service_id=service_id, host=HOST, instance_key="i-1")
    client.close()  # G9
    assert reg.state is LeaseState.STOPPED
    fake.journal.assert_called("DeregisterInstance", times=1, code="OK")
    assert fake.instances(service_id) == []
    assert reg.stop()
    assert eventually(lambda: fake.streams() == [])  # its stream was closed too


def test_stopped_registration_leaves_no_close_hook(client: Client, service_id: int) -> None:
    reg = start_registration(client, service_id=service_id, host=HOST)
    assert reg.instance_key  # the server generated one
    assert unwrapped(reg)._close_hook in client._on_close
    reg.stop()
    assert unwrapped(reg)._close_hook not in client._on_close


def test_first_register_failure_raises_and_runs_nothing(fake: FakeRegistry, client: Client) -> None:
    with pytest.raises(NotFound):
        start_registration(client, service_id=999, host=HOST)
    assert fake.journal.calls("HeartbeatStream") == []
    hooks = client._on_close
    assert not any(isinstance(getattr(h, "__self__", None), RegistrationBase) for h in hooks)


def test_reprs_and_logs_hide_the_token(
    client: Client, service_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reg = start_registration(client, service_id=service_id, host=HOST, instance_key="i-1")
    token = client.auth.token()
    assert repr(reg).startswith(f"{type(unwrapped(reg)).__name__}(")
    assert "i-1" in repr(reg)
    assert "BEATING" in repr(reg)
    assert token not in repr(reg)
    reg.stop()
    assert all(token not in r.getMessage() for r in caplog.records)
    assert all(token not in repr(e) for e in reg.events)


def test_on_event_errors_are_logged_and_ignored(
    client: Client, service_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: LeaseEvent) -> None:
        raise RuntimeError("callback bug")

    reg = start_registration(client, service_id=service_id, host=HOST, on_event=broken)
    assert reg.state is LeaseState.BEATING
    reg.stop()
    assert reg.state is LeaseState.STOPPED
    assert "on_event callback failed" in caplog.text
    assert [e.state for e in reg.events][-1] is LeaseState.STOPPED
