"""sdk.aio.registration end to end against the in-process fake, in virtual time (G1-G5, G9).

The registration scenarios shared with the sync SDK run on both flavours in
``tests/sdk/test_sdk_registration.py`` and ``test_sdk_register_self.py``; here are the
ones the sync suite lacks (streams rejected after a lazy token fetch, auth disabled, failed
deregistration, event order, input validation) and what only asyncio has: cancellation.
One ``sdk.testing.ManualClock`` is shared by the fake and the client; the registration's
task is the only waiter on it, so ``clock.wait_blocked_async(1)`` means "it is idle now"
and ``clock.next_deadline()`` is its next wake-up. Effects are
awaited with bounded waits (``wait_*``, an ``on_event`` recorder, :func:`eventually`),
never sleeps; the event loop must stay free, so nothing here blocks on the fake.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from fake_registry import FakeRegistry
from sdk import Config, NotFound
from sdk._registration_calls import register_request
from sdk.aio import AsyncClient
from sdk.aio.registration import (
    AsyncRegistration,
    LeaseEvent,
    LeaseState,
    Reason,
    start_registration,
)
from sdk.errors import ClientClosed, InvalidArgument
from sdk.registration import Registration
from sdk.registration import start_registration as sync_start_registration
from sdk.testing import ManualClock
from tests.conftest import CLIENT_KEY, CLIENT_SECRET

pytestmark = pytest.mark.asyncio

HOST = "10.0.0.7"


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``predicate`` holds; fail after ``timeout`` real seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the condition never held"
        await asyncio.sleep(0.001)


class Recorder:
    """Collects events from ``on_event`` (called on the loop) and waits for them."""

    def __init__(self) -> None:
        self.events: list[LeaseEvent] = []
        self._signal = asyncio.Event()

    def __call__(self, event: LeaseEvent) -> None:
        self.events.append(event)
        self._signal.set()
        self._signal = asyncio.Event()

    def of(self, reason: Reason) -> list[LeaseEvent]:
        return [e for e in self.events if e.reason is reason]

    async def wait_for(
        self, reason: Reason, count: int = 1, timeout: float = 5.0
    ) -> list[LeaseEvent]:
        try:
            async with asyncio.timeout(timeout):
                while len(self.of(reason)) < count:
                    await self._signal.wait()
        except TimeoutError:
            raise AssertionError(f"waited for {count} {reason}; got {self.events!r}") from None
        return self.of(reason)


@pytest.fixture
def clock() -> ManualClock:
    """The SDK's ManualClock (it counts asyncio waiters), shared with the fake via conftest."""
    return ManualClock()


def _config(fake: FakeRegistry, **changes: str) -> Config:
    return Config(fake.address, CLIENT_KEY, CLIENT_SECRET, **changes)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def client(fake: FakeRegistry, clock: ManualClock) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(_config(fake), clock=clock) as c:
        yield c


@pytest.fixture
def service_id(fake: FakeRegistry) -> int:
    return fake.ensure_service("shop", "cart").id


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


async def advance_to_next(clock: ManualClock) -> float:
    """Once the task waits, move virtual time to exactly its deadline; return the step."""
    assert await clock.wait_blocked_async(1, timeout=5)
    deadline = clock.next_deadline()
    assert deadline is not None
    step = max(deadline - clock.monotonic(), 0.0)
    clock.advance(step)
    return step


async def beat(clock: ManualClock, reg: AsyncRegistration) -> None:
    """Run the next beat and wait until its answer (and whatever it caused) was handled."""
    answered = reg.answers
    await advance_to_next(clock)
    assert await reg.wait_answers(answered + 1), reg.events


def online_keys(fake: FakeRegistry, service_id: int) -> set[str]:
    return {i.instance_key for i in fake.instances(service_id, online=True)}


def in_frames(fake: FakeRegistry) -> int:
    calls = fake.journal.calls("HeartbeatStream")
    return sum(1 for call in calls for f in call.frames if f.direction == "in")


def held(fake: FakeRegistry, method: str) -> bool:
    """A call to ``method`` is being held by a delay fault."""
    return any(c.name == method and c.faults and not c.done for c in fake.calls())


# --- the sync suite, on asyncio --------------------------------------------------------------


async def test_default_ttl_beats_every_twenty_seconds(client: AsyncClient, service_id: int) -> None:
    reg = await start_registration(client, service_id=service_id, host=HOST, ttl_seconds=0)
    assert reg.interval == 20.0  # G3: the effective TTL (60) when 0 was sent
    assert await reg.stop()


async def test_end_of_stream_is_a_failure_and_the_stream_reopens(
    fake: FakeRegistry,
    clock: ManualClock,
    client: AsyncClient,
    service_id: int,
    recorder: Recorder,
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder,
    )  # fmt: skip
    fake.end_streams_after(1)
    await beat(clock, reg)  # answered, then the server ends the stream with OK
    (ended,) = await recorder.wait_for(Reason.STREAM_ENDED)
    assert ended.state is LeaseState.BACKING_OFF  # G2: not counted as a good beat
    fake.clear_stream_controls()
    await advance_to_next(clock)  # the first backoff is at most 1 s
    await recorder.wait_for(Reason.REOPEN)
    await eventually(lambda: len(fake.journal.calls("HeartbeatStream")) == 2)
    await beat(clock, reg)
    assert reg.state is LeaseState.BEATING
    assert online_keys(fake, service_id) == {"i-1"}
    assert await reg.stop()


async def test_unauthenticated_stream_reopens_with_a_fresh_token(
    fake: FakeRegistry,
    clock: ManualClock,
    client: AsyncClient,
    service_id: int,
    recorder: Recorder,
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder,
    )  # fmt: skip
    for _ in range(10):
        await beat(clock, reg)
    (stream,) = fake.journal.calls("HeartbeatStream")  # G5: not one per beat
    assert len([f for f in stream.frames if f.direction == "in"]) == 10
    old = await client.auth.token()
    fake.revoke_token(old)
    assert fake.kill_streams("i-1", code="UNAUTHENTICATED") == 1
    (failed,) = await recorder.wait_for(Reason.STREAM_FAILED)
    assert failed.detail == "UNAUTHENTICATED"
    assert client.auth.fresh() is None  # G7: the rejected token was dropped
    await advance_to_next(clock)
    await recorder.wait_for(Reason.REOPEN)
    await beat(clock, reg)  # the reopened stream fetched a token when first used
    first, second = fake.journal.calls("HeartbeatStream")[:2]
    assert dict(first.metadata)["authorization"] == f"Bearer {old}"
    assert dict(second.metadata)["authorization"] != f"Bearer {old}"
    assert fake.authentications == 2
    assert reg.state is LeaseState.BEATING
    assert online_keys(fake, service_id) == {"i-1"}
    assert await reg.stop()


async def test_a_stream_rejected_after_a_lazy_token_fetch_drops_that_token(
    fake: FakeRegistry,
    clock: ManualClock,
    client: AsyncClient,
    service_id: int,
    recorder: Recorder,
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder,
    )  # fmt: skip
    await beat(clock, reg)
    client.auth.invalidate()  # the reopen finds no token: the channel fetches one lazily
    fake.reject_streams("UNAUTHENTICATED", times=1)  # ... and that one is rejected at open
    assert fake.kill_streams("i-1") == 1
    await recorder.wait_for(Reason.STREAM_FAILED)
    await advance_to_next(clock)
    (*_, rejected) = await recorder.wait_for(Reason.STREAM_FAILED, 2)
    assert rejected.detail == "UNAUTHENTICATED"
    assert fake.authentications == 2
    assert client.auth.fresh() is None  # the lazily fetched token was dropped too
    await advance_to_next(clock)
    await recorder.wait_for(Reason.REOPEN, 2)
    await beat(clock, reg)
    assert fake.authentications == 3  # one more, never a loop
    assert reg.state is LeaseState.BEATING
    assert await reg.stop()


async def test_registers_and_beats_with_auth_disabled(
    fake: FakeRegistry, clock: ManualClock, service_id: int
) -> None:
    fake.set_auth_enabled(False)
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, disable_auth=True)
    async with AsyncClient(config, clock=clock) as client:
        reg = await start_registration(client, service_id=service_id, host=HOST, ttl_seconds=3)
        await beat(clock, reg)
        assert online_keys(fake, service_id) == {reg.instance_key}
        assert await reg.stop()
    assert fake.authentications == 0
    assert "authorization" not in dict(fake.journal.calls("HeartbeatStream")[0].metadata)


async def test_failed_deregister_still_stops_with_a_warning_event(
    fake: FakeRegistry, client: AsyncClient, service_id: int, recorder: Recorder
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", on_event=recorder
    )
    fake.fail_next("DeregisterInstance", "UNAVAILABLE")
    assert await reg.stop()
    assert reg.state is LeaseState.STOPPED
    (failed,) = recorder.of(Reason.DEREGISTER_FAILED)
    assert (failed.detail, failed.reason.warning) == ("UNAVAILABLE", True)
    assert online_keys(fake, service_id) == {"i-1"}  # the lease lapses on its own


async def test_start_twice_or_on_a_closed_client_is_refused(
    fake: FakeRegistry, clock: ManualClock, service_id: int
) -> None:
    client = AsyncClient(_config(fake), clock=clock)
    reg = await start_registration(client, service_id=service_id, host=HOST)
    with pytest.raises(RuntimeError, match="already started"):
        await reg.start()
    await client.close()
    request = register_request("dev", service_id=service_id, host=HOST)
    with pytest.raises(ClientClosed):
        await AsyncRegistration(client, request).start()


async def test_first_register_failure_raises_and_runs_nothing(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    before = set(asyncio.all_tasks())
    with pytest.raises(NotFound):
        await start_registration(client, service_id=999, host=HOST)
    assert fake.journal.calls("HeartbeatStream") == []
    assert not any(
        isinstance(getattr(h, "__self__", None), AsyncRegistration) for h in client._on_close
    )
    assert set(asyncio.all_tasks()) <= before


async def test_bad_input_is_refused_naming_the_field_before_any_call(
    fake: FakeRegistry, client: AsyncClient, service_id: int
) -> None:
    with pytest.raises(InvalidArgument, match=r"endpoints\[0\]\.host"):
        await start_registration(
            client, service_id=service_id, host=HOST, endpoints=[{"network": "lan"}]
        )
    with pytest.raises(InvalidArgument, match="meta"):
        await start_registration(client, service_id=service_id, host=HOST, meta={"x": object()})
    assert fake.journal.calls("RegisterInstance") == []


async def test_events_record_every_transition_in_order(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient, service_id: int
) -> None:
    recorder = Recorder()
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3,
        on_event=recorder,
    )  # fmt: skip
    await beat(clock, reg)
    assert await reg.stop()
    moves = [(e.previous, e.state, e.reason) for e in reg.events]
    assert moves == [
        (LeaseState.IDLE, LeaseState.REGISTERING, Reason.START),
        (LeaseState.REGISTERING, LeaseState.BEATING, Reason.REGISTERED),
        (LeaseState.BEATING, LeaseState.DEREGISTERING, Reason.STOP),
        (LeaseState.DEREGISTERING, LeaseState.STOPPED, Reason.DEREGISTERED),
    ]
    assert recorder.events == list(reg.events)
    assert reg.answers == 1


# --- cancellation ----------------------------------------------------------------------------


async def test_cancelled_stop_caller_still_stops_and_deregisters(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient, service_id: int
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3
    )
    await beat(clock, reg)
    beats = in_frames(fake)
    fake.add_fault("DeregisterInstance", delay=30, times=1)  # held until the clock moves
    stopper = asyncio.create_task(reg.stop())
    await eventually(lambda: held(fake, "DeregisterInstance"))
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    task = reg._task
    assert task is not None
    assert not task.done()  # the registration's own task carries on deregistering
    assert reg.state is LeaseState.DEREGISTERING
    clock.advance(30)
    assert await reg.wait_state(LeaseState.STOPPED)
    await eventually(task.done)
    assert not task.cancelled()
    fake.journal.assert_called("DeregisterInstance", times=1, code="OK")
    assert fake.instances(service_id) == []
    assert in_frames(fake) == beats  # no beat after the stop
    assert await reg.stop()


async def test_cancelling_the_registration_task_settles_it_and_propagates(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient, service_id: int
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3
    )
    await beat(clock, reg)
    task = reg._task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()  # never swallowed
    assert reg.state is LeaseState.STOPPED  # settled without any RPC
    assert fake.journal.calls("DeregisterInstance") == []
    await eventually(lambda: fake.streams() == [])  # its stream was cancelled
    assert clock.blocked == 0
    assert await reg.stop()  # nothing left to do
    assert fake.journal.calls("DeregisterInstance") == []


async def test_cancelling_the_task_during_a_re_register_settles_it_as_cancelled(
    fake: FakeRegistry,
    clock: ManualClock,
    client: AsyncClient,
    service_id: int,
    recorder: Recorder,
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=3,
        on_event=recorder,
    )  # fmt: skip
    await beat(clock, reg)
    fake.answer_zero("i-1")
    fake.add_fault("RegisterInstance", delay=30, times=1)
    await advance_to_next(clock)
    await eventually(lambda: held(fake, "RegisterInstance"))
    assert reg.state is LeaseState.RE_REGISTERING
    task = reg._task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (failed,) = recorder.of(Reason.REGISTER_FAILED)
    assert failed.detail == "CANCELLED"
    assert reg.state is LeaseState.STOPPED
    clock.advance(30)  # release the held call; nobody acts on its answer
    await eventually(lambda: not held(fake, "RegisterInstance"))
    assert reg.state is LeaseState.STOPPED


async def test_cancelled_start_leaves_nothing_running(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient, service_id: int
) -> None:
    reg = AsyncRegistration(client, register_request("dev", service_id=service_id, host=HOST))
    fake.add_fault("RegisterInstance", delay=30, times=1)
    starter = asyncio.create_task(reg.start())
    await eventually(lambda: held(fake, "RegisterInstance"))
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    assert reg.state is LeaseState.FAILED
    assert reg.events[-1].detail == "CANCELLED"
    assert reg._task is None
    assert reg._close_hook not in client._on_close
    clock.advance(30)
    await eventually(lambda: not held(fake, "RegisterInstance"))
    assert fake.journal.calls("HeartbeatStream") == []
    assert await reg.stop()
    assert reg.state is LeaseState.STOPPED


async def test_stop_while_start_registers_deregisters_what_it_registered(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient, service_id: int
) -> None:
    reg = AsyncRegistration(
        client, register_request("dev", service_id=service_id, host=HOST, instance_key="i-1")
    )
    fake.add_fault("RegisterInstance", delay=30, times=1)
    starter = asyncio.create_task(reg.start())
    await eventually(lambda: held(fake, "RegisterInstance"))
    stopper = asyncio.create_task(reg.stop())
    await eventually(lambda: reg.state is LeaseState.STOPPING)
    clock.advance(30)
    assert await stopper
    assert await starter is reg
    assert reg.state is LeaseState.STOPPED
    fake.journal.assert_called("DeregisterInstance", times=1, code="OK")
    assert reg._task is None  # never beat
    assert fake.journal.calls("HeartbeatStream") == []


async def test_a_channel_closed_under_it_backs_off_and_stops_without_crashing(
    fake: FakeRegistry,
    clock: ManualClock,
    client: AsyncClient,
    service_id: int,
    recorder: Recorder,
) -> None:
    reg = await start_registration(
        client, service_id=service_id, host=HOST, instance_key="i-1", ttl_seconds=300,
        on_event=recorder,
    )  # fmt: skip
    await beat(clock, reg)
    await client._transport.close()  # as if the client were closed behind its back
    (cut,) = await recorder.wait_for(Reason.STREAM_FAILED)  # the call was cancelled under it
    assert cut.detail == "CANCELLED"
    await advance_to_next(clock)
    (*_, reopen) = await recorder.wait_for(Reason.STREAM_FAILED, 2)  # closed channel
    assert (reopen.previous, reopen.detail) == (LeaseState.REOPENING, "CANCELLED")
    assert await reg.stop()
    (failed,) = recorder.of(Reason.DEREGISTER_FAILED)
    assert failed.detail == "CANCELLED"
    assert reg.state is LeaseState.STOPPED


# --- register_self and the public surface ----------------------------------------------------


def _public(cls: type) -> dict[str, Any]:
    return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}


async def test_the_async_registration_has_the_sync_surface_with_coroutines() -> None:
    sync, aio = _public(Registration), _public(AsyncRegistration)
    assert sync.keys() == aio.keys()
    for name, member in sync.items():
        twin = aio[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        assert inspect.iscoroutinefunction(twin), name
        sync_params = list(inspect.signature(member).parameters.values())
        aio_params = list(inspect.signature(twin).parameters.values())
        assert [(p.name, p.kind, p.default) for p in sync_params] == [
            (p.name, p.kind, p.default) for p in aio_params
        ], name
    sync_start = inspect.signature(sync_start_registration).parameters
    aio_start = inspect.signature(start_registration).parameters
    assert [(p.name, p.kind, p.default) for p in sync_start.values()] == [
        (p.name, p.kind, p.default) for p in aio_start.values()
    ]
    assert inspect.iscoroutinefunction(start_registration)


async def test_register_self_racing_client_close_is_stopped_and_deregistered(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    client = AsyncClient(_config(fake), clock=clock)
    fake.add_fault("RegisterInstance", delay=0.3, real_time=True, times=1)
    starting = asyncio.ensure_future(
        client.registry.register_self("shop", "cart", host=HOST, instance_key="i-1")
    )
    await asyncio.to_thread(
        fake.journal.wait_for, lambda c: c.method.endswith("RegisterInstance"), timeout=5
    )
    await client.close()  # while the first Register is still in flight
    reg = await starting
    assert reg.state is LeaseState.STOPPED
    assert reg._task is None  # no heartbeat task was left running on the closed client
    fake.journal.assert_called("DeregisterInstance", times=1, code="OK")
    assert online_keys(fake, reg.service_id) == set()
