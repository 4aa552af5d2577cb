"""sdk.clock and sdk.testing.ManualClock, and their compatibility with the fake's clock."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator

import grpc
import pytest

import fake_registry.clock as fake_clock
from fake_registry import FakeRegistry
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc
from sdk.clock import Clock, SystemClock
from sdk.testing import DEFAULT_START, ManualClock

# Bounds for real-time waits: generous, since they only bound a failure.
SETTLE = 5.0


class Waiter:
    """Runs clock.wait_until in a thread and records its result."""

    def __init__(
        self,
        clock: Clock,
        deadline: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> None:
        self.result: bool | None = None
        self._thread = threading.Thread(
            target=self._run, args=(clock, deadline, cancel, timeout), daemon=True
        )
        self._thread.start()

    def _run(
        self, clock: Clock, deadline: float, cancel: threading.Event | None, timeout: float | None
    ) -> None:
        self.result = clock.wait_until(deadline, cancel, timeout)

    def join(self) -> bool | None:
        self._thread.join(SETTLE)
        assert not self._thread.is_alive(), "waiter still blocked"
        return self.result

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# --- the protocol and the fake's clock ------------------------------------------


@pytest.mark.parametrize(
    "factory", [SystemClock, ManualClock, fake_clock.ManualClock], ids=lambda f: f.__module__
)
def test_clocks_satisfy_the_sdk_protocol(factory: Callable[[], object]) -> None:
    assert isinstance(factory(), Clock)


def test_sdk_manual_clock_satisfies_the_fakes_protocol() -> None:
    assert isinstance(ManualClock(), fake_clock.Clock)


SHARED_METHODS = ("time", "monotonic", "wait_until", "wake", "advance", "set_time")


@pytest.mark.parametrize("name", [*SHARED_METHODS, "add_listener", "remove_listener"])
def test_manual_clocks_have_the_same_call_shape(name: str) -> None:
    # The plugin shares one clock between the fake and SDK clients, so either
    # ManualClock must accept every call the other side makes.
    ours = inspect.signature(getattr(ManualClock, name))
    theirs = inspect.signature(getattr(fake_clock.ManualClock, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for param in ours.parameters.values():
        assert param.default == theirs.parameters[param.name].default
        assert param.kind == theirs.parameters[param.name].kind


def test_both_manual_clocks_start_at_the_same_moment() -> None:
    fake = fake_clock.ManualClock()
    assert (ManualClock().time(), ManualClock().monotonic()) == (fake.time(), fake.monotonic())
    assert DEFAULT_START == fake_clock.DEFAULT_MANUAL_START


def test_the_fake_runs_on_the_sdk_manual_clock(clock: ManualClock) -> None:
    # What the pytest plugin relies on: one sdk.testing.ManualClock drives the
    # fake's tokens, so advancing it expires them for both sides at once.
    with (
        FakeRegistry(clients={"key": "secret-value"}, token_ttl=60, clock=clock) as fake,
        grpc.insecure_channel(fake.address) as channel,
    ):
        reply = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
            user_pb2.AuthenticateClientRequest(client_key="key", client_secret="secret-value"),
            timeout=10,
        )
        assert reply.expires_at == int(clock.time()) + 60
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        metadata = (("authorization", f"Bearer {reply.access_token}"),)
        registry.ListServices(registry_pb2.ListServicesRequest(), metadata=metadata, timeout=10)
        clock.advance(61)
        with pytest.raises(grpc.RpcError) as info:
            registry.ListServices(registry_pb2.ListServicesRequest(), metadata=metadata, timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert not fake.errors.take()


# --- SystemClock ---------------------------------------------------------------


def test_system_clock_reads_real_time() -> None:
    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 1
    first = clock.monotonic()
    assert clock.monotonic() >= first
    assert repr(clock) == "SystemClock()"


def test_system_clock_wait_reaches_a_short_deadline() -> None:
    clock = SystemClock()
    deadline = clock.monotonic() + 0.02
    assert clock.wait_until(deadline) is True
    assert clock.monotonic() >= deadline


def test_system_clock_past_deadline_wins_over_cancel() -> None:
    cancel = threading.Event()
    cancel.set()
    clock = SystemClock()
    assert clock.wait_until(clock.monotonic() - 1, cancel) is True


def test_system_clock_cancel_ends_the_wait_promptly() -> None:
    clock = SystemClock()
    cancel = threading.Event()
    waiter = Waiter(clock, clock.monotonic() + 3600, cancel)
    started = time.monotonic()
    cancel.set()
    clock.wake()  # a no-op here, but what SDK code always calls after set()
    assert waiter.join() is False
    assert time.monotonic() - started < SETTLE


def test_system_clock_timeout() -> None:
    clock = SystemClock()
    assert clock.wait_until(clock.monotonic() + 3600, timeout=0.01) is False
    assert clock.wait_until(float("inf"), threading.Event(), timeout=0.01) is False


def test_nan_deadline_is_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        SystemClock().wait_until(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        ManualClock().wait_until(float("nan"))


# --- ManualClock -----------------------------------------------------------------


def test_manual_clock_starts_fixed() -> None:
    clock = ManualClock(start=1000)
    assert (clock.time(), clock.monotonic()) == (1000.0, 0.0)
    assert repr(clock) == "ManualClock(time=1000.000, monotonic=0.000)"


def test_advance_moves_both_readings(clock: ManualClock) -> None:
    clock.advance(1.5)
    clock.advance(0)
    assert clock.time() == DEFAULT_START + 1.5
    assert clock.monotonic() == 1.5


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_advance_rejects_bad_steps(clock: ManualClock, bad: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(bad)
    assert clock.monotonic() == 0


def test_set_time_forward_and_back(clock: ManualClock) -> None:
    clock.set_time(DEFAULT_START + 100)
    assert (clock.time(), clock.monotonic()) == (DEFAULT_START + 100, 100)
    clock.set_time(DEFAULT_START)  # a wall-clock correction: monotonic stays
    assert (clock.time(), clock.monotonic()) == (DEFAULT_START, 100)
    with pytest.raises(ValueError, match="unix_seconds"):
        clock.set_time(float("inf"))


def test_waiters_wake_only_when_their_deadline_passes(clock: ManualClock) -> None:
    early, late = Waiter(clock, 10), Waiter(clock, 20)
    assert clock.wait_blocked(2, timeout=SETTLE)
    assert clock.next_deadline() == 10
    clock.advance(9.5)
    assert clock.wait_blocked(2, timeout=SETTLE)  # both re-checked and went back to sleep
    assert early.alive
    assert late.alive
    clock.advance(0.5)
    assert early.join() is True
    assert late.alive
    assert clock.next_deadline() == 20
    clock.set_time(clock.time() + 10)
    assert late.join() is True
    assert clock.blocked == 0
    assert clock.next_deadline() is None


def test_reached_deadline_returns_at_once(clock: ManualClock) -> None:
    cancel = threading.Event()
    cancel.set()
    assert clock.wait_until(0.0, cancel) is True


def test_cancel_then_wake_ends_the_wait(clock: ManualClock) -> None:
    cancel = threading.Event()
    waiter = Waiter(clock, 3600, cancel)
    assert clock.wait_blocked(1, timeout=SETTLE)
    cancel.set()
    clock.wake()
    assert waiter.join() is False
    assert clock.blocked == 0


def test_cancel_is_also_seen_when_the_clock_moves(clock: ManualClock) -> None:
    cancel = threading.Event()
    waiter = Waiter(clock, 3600, cancel)
    assert clock.wait_blocked(1, timeout=SETTLE)
    cancel.set()
    clock.advance(1)
    assert waiter.join() is False


def test_real_time_timeout(clock: ManualClock) -> None:
    assert clock.wait_until(3600, timeout=0.01) is False
    assert clock.blocked == 0


def test_wait_blocked_times_out(clock: ManualClock) -> None:
    assert clock.wait_blocked(1, timeout=0.01) is False


def test_listeners_get_the_new_time(clock: ManualClock) -> None:
    seen: list[float] = []
    clock.add_listener(seen.append)
    clock.advance(5)
    clock.set_time(42)
    clock.remove_listener(seen.append)
    clock.advance(1)
    assert seen == [DEFAULT_START + 5, 42]
    with pytest.raises(ValueError, match="x not in list"):
        clock.remove_listener(seen.append)


def test_listeners_run_outside_the_lock(clock: ManualClock) -> None:
    # A listener may read the clock or hand off to another thread that does.
    readings: list[float] = []

    def listener(_now: float) -> None:
        thread = threading.Thread(target=lambda: readings.append(clock.monotonic()))
        thread.start()
        thread.join(SETTLE)

    clock.add_listener(listener)
    clock.advance(3)
    assert readings == [3]


def test_a_failing_listener_does_not_starve_the_others(clock: ManualClock) -> None:
    seen: list[float] = []

    def broken(_now: float) -> None:
        raise RuntimeError("listener failed")

    clock.add_listener(broken)
    clock.add_listener(seen.append)
    with pytest.raises(RuntimeError, match="listener failed"):
        clock.advance(1)
    assert seen == [DEFAULT_START + 1]
    assert clock.monotonic() == 1  # the move itself happened


@pytest.fixture
def many_waiters(clock: ManualClock) -> Iterator[list[Waiter]]:
    waiters = [Waiter(clock, float(i)) for i in range(1, 21)]
    yield waiters
    clock.advance(100)
    for waiter in waiters:
        waiter.join()


def test_concurrent_waiters_are_released_in_deadline_order(
    clock: ManualClock, many_waiters: list[Waiter]
) -> None:
    assert clock.wait_blocked(20, timeout=SETTLE)
    for released in range(1, 21):
        deadline = clock.next_deadline()
        assert deadline == released
        clock.advance(deadline - clock.monotonic())
        assert many_waiters[released - 1].join() is True
    assert clock.blocked == 0
