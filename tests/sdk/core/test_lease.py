"""Lease: the registration state machine, driven with explicit times (CONTRACT 3.5, G1-G5).

``Sim`` plays a well-behaved server: it answers every Register and beat at once, and a test
breaks things by hand between calls to ``run``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk._core.lease import _TRANSITIONS, Lease
from sdk._core.lease_values import (
    Action,
    CloseStream,
    Deregister,
    Emit,
    LeaseEvent,
    LeaseParams,
    LeaseState,
    OpenStream,
    Reason,
    Register,
    SendBeat,
    effective_ttl,
)

T0 = 1_000.0
S = LeaseState


def cycle(*values: float) -> Callable[[], float]:
    numbers: Iterator[float] = itertools.cycle(values)
    return lambda: next(numbers)


def commands(actions: Sequence[Action]) -> list[Action]:
    return [a for a in actions if not isinstance(a, Emit)]


def moves(actions: Sequence[Action]) -> list[tuple[LeaseState, LeaseState, Reason]]:
    return [
        (a.event.previous, a.event.state, a.event.reason) for a in actions if isinstance(a, Emit)
    ]


class Sim:
    """A lease, a local clock and an obliging server."""

    def __init__(
        self, ttl: int, key: str = "inst-1", rand: Callable[[], float] | None = None
    ) -> None:
        self.lease = Lease(key, ttl, rand=rand or cycle(0.5))
        self.now = T0
        self.beats: list[float] = []  # send times
        self.answer: Callable[[float], int] = lambda now: int(now) + self.lease.ttl
        self.auto_answer = True
        self.pending: SendBeat | None = None  # the beat left unanswered
        self.actions: list[Action] = []

    def apply(self, actions: list[Action]) -> list[Action]:
        self.actions.extend(actions)
        return actions

    def start(self, new_key: str | None = None) -> None:
        [register] = commands(self.apply(self.lease.start(self.now)))
        assert isinstance(register, Register)
        self.apply(
            self.lease.registered(
                self.now, new_key or register.instance_key, int(self.now) + self.lease.ttl
            )
        )

    def run(self, until: float) -> list[Action]:
        """Advance to ``until``, running every due poll and answering beats at once."""
        out: list[Action] = []
        while (deadline := self.lease.next_deadline) is not None and deadline <= until:
            self.now = max(self.now, deadline)
            for action in self.apply(self.lease.poll(self.now)):
                out.append(action)
                if isinstance(action, SendBeat):
                    self.beats.append(self.now)
                    self.pending = action
                    if self.auto_answer:
                        self.pending = None
                        out.extend(
                            self.apply(
                                self.lease.beat_answered(
                                    self.now, action.stream, self.answer(self.now)
                                )
                            )
                        )
        self.now = until
        return out

    def answer_pending(self) -> None:
        if self.pending is not None:
            beat, self.pending = self.pending, None
            self.apply(self.lease.beat_answered(self.now, beat.stream, self.answer(self.now)))

    @property
    def stream(self) -> int:
        opened = [a.stream for a in self.actions if isinstance(a, OpenStream)]
        closed = {a.stream for a in self.actions if isinstance(a, CloseStream)}
        assert opened
        assert opened[-1] not in closed
        return opened[-1]

    def reasons(self) -> list[Reason]:
        return [event.reason for event in self.lease.history]


# --- timing (G3) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "ttl", "interval"),
    [
        (3, 3, 1.0),
        (0, 60, 20.0),
        (-5, 60, 20.0),
        (60, 60, 20.0),
        (1, 1, 1.0),
        (9, 9, 3.0),
        (30, 30, 10.0),
    ],
)
def test_interval_is_a_third_of_the_effective_ttl_with_a_floor(
    requested: int, ttl: int, interval: float
) -> None:
    lease = Lease("k", requested, rand=cycle(0.5))
    assert (effective_ttl(requested), lease.ttl, lease.interval) == (ttl, ttl, interval)


def test_register_then_first_beat_after_one_interval() -> None:
    lease = Lease("inst-1", 3, rand=cycle(0.5))
    assert lease.state is S.IDLE
    actions = lease.start(T0)
    assert commands(actions) == [Register("inst-1")]
    assert moves(actions) == [(S.IDLE, S.REGISTERING, Reason.START)]
    actions = lease.registered(T0 + 0.2, "inst-1", int(T0) + 3)
    assert commands(actions) == [OpenStream(1)]
    assert moves(actions) == [(S.REGISTERING, S.BEATING, Reason.REGISTERED)]
    assert lease.expires_at == int(T0) + 3
    assert lease.lease_deadline == T0 + 2  # sent + ttl - 1 (the server truncates to seconds)
    assert lease.next_deadline == T0 + 1  # anchored on the Register's send time, not a full TTL
    assert lease.poll(T0 + 0.99) == []
    assert lease.poll(T0 + 1) == [SendBeat(1, "inst-1")]
    assert lease.next_deadline == T0 + 2  # answer timeout = min(10, interval)
    assert lease.beat_answered(T0 + 1.1, 1, int(T0) + 4) == []
    assert (lease.expires_at, lease.lease_deadline, lease.next_deadline) == (
        int(T0) + 4,
        T0 + 3,
        T0 + 2,
    )


def test_ttl_three_beats_every_second_and_never_lapses() -> None:
    sim = Sim(ttl=3)
    sim.start()
    sim.run(T0 + 60)
    assert sim.beats == [T0 + n for n in range(1, 61)]
    assert Reason.LEASE_EXPIRED not in sim.reasons()
    assert sim.lease.state is S.BEATING


def test_a_late_answer_is_followed_by_the_overdue_beat_at_once() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.auto_answer = False
    sim.run(T0 + 20)
    assert sim.lease.next_deadline == T0 + 30  # the answer timeout
    sim.lease.beat_answered(T0 + 25, sim.stream, int(T0) + 85)
    assert sim.lease.next_deadline == T0 + 40  # sent + interval


# --- expires_at == 0 (G1, CONTRACT 3.10) ----------------------------------------------


def test_zero_reregisters_same_key_then_a_new_key_when_a_fresh_registration_beats_zero() -> None:
    sim = Sim(ttl=30)
    sim.start()
    sim.run(T0 + 10)  # one beat answered
    sim.answer = lambda now: 0  # the instance vanished on the server
    actions = sim.run(T0 + 20)
    assert commands(actions) == [SendBeat(1, "inst-1"), Register("inst-1")]
    assert moves(actions) == [
        (S.BEATING, S.LEASE_LOST, Reason.LEASE_ZERO),
        (S.LEASE_LOST, S.RE_REGISTERING, Reason.SAME_KEY),
    ]
    assert sim.lease.next_deadline is None  # no beats while the lease is lost
    actions = sim.lease.registered(T0 + 20, "inst-1", int(T0) + 50)
    assert commands(actions) == []  # the stream never broke: keep it
    assert moves(actions) == [(S.RE_REGISTERING, S.BEATING, Reason.REGISTERED)]

    actions = sim.run(T0 + 30)  # the re-registered key still beats 0: the 3.10-1 quirk
    assert commands(actions) == [SendBeat(1, "inst-1"), Register("")]
    [warning] = [a.event for a in actions if isinstance(a, Emit) and a.event.reason.warning]
    assert warning == LeaseEvent(
        T0 + 30, S.LEASE_LOST, S.RE_REGISTERING, Reason.NEW_KEY, "inst-1", "inst-1"
    )

    sim.answer = lambda now: int(now) + 30
    sim.apply(sim.lease.registered(T0 + 30, "3f1c-new-uuid", int(T0) + 60))
    assert sim.lease.instance_key == "3f1c-new-uuid"
    actions = sim.run(T0 + 40)
    assert commands(actions) == [SendBeat(1, "3f1c-new-uuid")]
    assert sim.lease.state is S.BEATING


def test_a_restart_on_a_quirk_hidden_key_gets_a_new_key_on_the_second_zero() -> None:
    sim = Sim(ttl=30, key="fixed-key")  # restarted after a clean stop: the 3.10-1 quirk
    sim.start()
    sim.answer = lambda now: 0
    assert commands(sim.run(T0 + 10))[-1] == Register("fixed-key")  # 0 once: same key first
    sim.apply(sim.lease.registered(T0 + 10, "fixed-key", int(T0) + 40))
    assert commands(sim.run(T0 + 20))[-1] == Register("")
    assert sim.reasons().count(Reason.NEW_KEY) == 1


def test_a_replacement_key_that_beats_zero_retries_after_a_backoff() -> None:
    sim = Sim(ttl=30, rand=cycle(0.5))
    sim.start()
    sim.answer = lambda now: 0
    sim.run(T0 + 10)  # 0: same key
    sim.apply(sim.lease.registered(T0 + 10, "inst-1", int(T0) + 40))
    sim.run(T0 + 20)  # 0 again: NEW_KEY
    sim.apply(sim.lease.registered(T0 + 20, "new", int(T0) + 50))
    actions = sim.run(T0 + 30)  # still 0: a persistent server problem, not the quirk
    assert commands(actions) == [SendBeat(1, "new")]
    assert moves(actions)[-1] == (S.LEASE_LOST, S.RE_REGISTERING, Reason.SAME_KEY)
    assert sim.lease.next_deadline == T0 + 30 + 0.5  # full jitter 0.5 of the 1 s ceiling
    assert commands(sim.run(T0 + 31)) == [Register("new")]
    sim.apply(sim.lease.registered(T0 + 31, "new", int(T0) + 61))
    assert moves(sim.run(T0 + 41))[-1] == (S.LEASE_LOST, S.RE_REGISTERING, Reason.SAME_KEY)
    assert sim.reasons().count(Reason.NEW_KEY) == 1  # no key churn before a beat succeeds


def test_a_blank_initial_key_is_not_a_replacement() -> None:
    sim = Sim(ttl=30, key="")
    sim.start(new_key="server-made")
    assert sim.lease.instance_key == "server-made"
    sim.answer = lambda now: 0
    assert commands(sim.run(T0 + 10))[-1] == Register("server-made")


# --- streams (G2, G4, G5) -------------------------------------------------------------


def test_stream_failure_backs_off_then_reopens_and_beats_if_due() -> None:
    sim = Sim(ttl=60, rand=cycle(0.5))
    sim.start()
    sim.run(T0 + 21)
    actions = sim.apply(sim.lease.stream_failed(T0 + 21, 1, "UNAVAILABLE"))
    assert commands(actions) == [CloseStream(1)]
    [event] = [a.event for a in actions if isinstance(a, Emit)]
    assert (event.state, event.reason, event.detail) == (
        S.BACKING_OFF,
        Reason.STREAM_FAILED,
        "UNAVAILABLE",
    )
    assert sim.lease.next_deadline == T0 + 21.5  # full jitter 0.5 of the 1 s ceiling
    sim.run(T0 + 50)
    assert commands(sim.actions)[-3:] == [CloseStream(1), OpenStream(2), SendBeat(2, "inst-1")]
    assert sim.beats == [T0 + 20, T0 + 40]  # the schedule survives the reopen
    assert sim.lease.state is S.BEATING


def test_stream_killed_five_times_backoff_grows_bounded_jittered_and_the_lease_holds() -> None:
    rands = [0.9, 0.3, 0.7, 0.1, 0.5, 0.6]
    sim = Sim(ttl=60, rand=cycle(*rands))
    sim.start()
    sim.run(T0 + 20)  # beat at +20: the lease surely holds until T0 + 79
    kill_at = T0 + 25
    sim.now = kill_at
    delays = []
    for _ in range(5):
        stream = sim.stream
        sim.apply(sim.lease.stream_failed(sim.now, stream, "UNAVAILABLE"))
        retry_at = sim.lease.next_deadline
        assert retry_at is not None
        delays.append(retry_at - sim.now)
        sim.run(retry_at)  # reopens; the next beat (due at T0 + 40) is not due yet for a while
        assert sim.lease.state in (S.REOPENING, S.BEATING)
    ceilings = [1, 2, 4, 8, 16]
    assert delays == pytest.approx([r * c for r, c in zip(rands, ceilings, strict=False)])
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    sim.run(T0 + 100)
    assert sim.lease.state is S.BEATING
    assert Reason.LEASE_EXPIRED not in sim.reasons()
    assert all(later - earlier <= 20 for earlier, later in itertools.pairwise(sim.beats))


def test_backoff_resets_after_an_answered_beat() -> None:
    sim = Sim(ttl=60, rand=cycle(0.5))
    sim.start()
    for _ in range(3):  # three failures: ceilings 1, 2, 4
        sim.apply(sim.lease.stream_failed(sim.now, sim.stream, "INTERNAL"))
        sim.run(sim.lease.next_deadline or 0.0)
    sim.run(T0 + 25)  # the beat at +20 is answered on the reopened stream
    sim.apply(sim.lease.stream_failed(sim.now, sim.stream, "INTERNAL"))
    assert sim.lease.next_deadline == sim.now + 0.5  # back to the 1 s ceiling


def test_backoff_is_capped_at_the_interval_while_the_lease_lives() -> None:
    sim = Sim(ttl=9, rand=cycle(0.999))  # interval 3 s
    sim.start()
    sim.run(T0 + 3)  # beat sent at +3: the lease surely holds until +3 + 9 - 1 = +11
    sim.auto_answer = False
    delays = []
    for _ in range(6):
        sim.apply(sim.lease.stream_failed(sim.now, sim.stream, "UNAVAILABLE"))
        retry_at = sim.lease.retry_at
        assert retry_at is not None
        delays.append(round(retry_at - sim.now, 3))
        sim.run(retry_at)
    # Ceilings 1, 2, 4, 8, 16, 30 (x 0.999), the 4 and the 8 cut to the 3 s interval while the
    # lease lives; the failure at +11.0 comes as it ends: full backoff from then on.
    assert delays == [0.999, 1.998, 2.997, 2.997, 15.984, 29.97]
    assert sim.reasons().count(Reason.LEASE_EXPIRED) == 1


def test_stream_end_with_an_unanswered_beat_reregisters_the_same_key() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.auto_answer = False
    sim.run(T0 + 20)
    actions = sim.lease.stream_ended(T0 + 21, 1)
    assert commands(actions) == [CloseStream(1), Register("inst-1")]
    assert moves(actions) == [
        (S.BEATING, S.LEASE_LOST, Reason.STREAM_ENDED),
        (S.LEASE_LOST, S.RE_REGISTERING, Reason.SAME_KEY),
    ]
    assert commands(sim.lease.registered(T0 + 21, "inst-1", int(T0) + 81)) == [OpenStream(2)]


def test_stream_end_while_idle_is_a_stream_failure() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.run(T0 + 21)
    actions = sim.lease.stream_ended(T0 + 22, 1)
    assert moves(actions) == [(S.BEATING, S.BACKING_OFF, Reason.STREAM_ENDED)]


def test_an_unanswered_beat_times_out_and_closes_the_stream() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.auto_answer = False
    sim.run(T0 + 20)
    actions = sim.run(T0 + 30)
    assert commands(actions) == [CloseStream(1)]
    assert moves(actions) == [(S.BEATING, S.BACKING_OFF, Reason.ANSWER_TIMEOUT)]


def test_outcomes_of_an_old_stream_are_ignored() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.apply(sim.lease.stream_failed(T0 + 1, 1, "UNAVAILABLE"))
    sim.run(T0 + 5)
    assert sim.stream == 2
    assert sim.lease.stream_failed(T0 + 5, 1, "CANCELLED") == []  # the cancel we asked for
    assert sim.lease.stream_ended(T0 + 5, 1) == []
    assert sim.lease.beat_answered(T0 + 5, 1, 0) == []
    assert sim.lease.state is S.REOPENING


def test_a_stream_failing_during_reregistration_is_reopened_after_it() -> None:
    sim = Sim(ttl=30)
    sim.start()
    sim.run(T0 + 10)
    sim.answer = lambda now: 0
    sim.run(T0 + 20)
    assert sim.lease.state is S.RE_REGISTERING
    assert commands(sim.lease.stream_failed(T0 + 20, 1, "UNAVAILABLE")) == [CloseStream(1)]
    assert sim.lease.state is S.RE_REGISTERING
    assert commands(sim.lease.registered(T0 + 20, "inst-1", int(T0) + 50)) == [OpenStream(2)]


def test_lapse_is_reported_once_and_a_later_beat_revives() -> None:
    sim = Sim(ttl=3, rand=cycle(0.0))
    sim.start()
    sim.auto_answer = False
    sim.run(T0 + 1)
    sim.apply(sim.lease.stream_failed(T0 + 1.5, 1, "UNAVAILABLE"))
    sim.run(T0 + 1.5)  # reopen at once (jitter 0)
    sim.apply(sim.lease.stream_failed(T0 + 1.6, 2, "UNAVAILABLE"))
    sim.now = T0 + 1.6
    sim.run(T0 + 2.5)
    assert sim.reasons().count(Reason.LEASE_EXPIRED) == 1
    sim.auto_answer = True
    sim.run(T0 + 10)
    assert sim.lease.state is S.BEATING
    assert sim.lease.lease_deadline > T0 + 10


# --- registration failures ------------------------------------------------------------


def test_initial_register_failure_fails_and_then_nothing_runs() -> None:
    lease = Lease("k", 30, rand=cycle(0.5))
    lease.start(T0)
    actions = lease.register_failed(T0, "NOT_FOUND")
    assert moves(actions) == [(S.REGISTERING, S.FAILED, Reason.REGISTER_FAILED)]
    assert lease.next_deadline is None
    assert lease.registered(T0, "k", 1) == []
    assert lease.start(T0) == []
    assert moves(lease.stop(T0)) == [(S.FAILED, S.STOPPED, Reason.STOP)]


def test_reregister_failure_retries_after_backoff() -> None:
    sim = Sim(ttl=30, rand=cycle(0.5))
    sim.start()
    sim.run(T0 + 10)
    sim.answer = lambda now: 0
    sim.run(T0 + 20)
    actions = sim.lease.register_failed(T0 + 20, "UNAVAILABLE")
    assert commands(actions) == []
    [notice] = [a.event for a in actions if isinstance(a, Emit)]
    assert (notice.previous, notice.state, notice.reason, notice.detail) == (
        S.RE_REGISTERING,
        S.RE_REGISTERING,
        Reason.REGISTER_FAILED,
        "UNAVAILABLE",
    )
    assert sim.lease.next_deadline == T0 + 20.5
    assert commands(sim.run(T0 + 20.5)) == [Register("inst-1")]


# --- stop (G4, G9) --------------------------------------------------------------------


def test_stop_during_backoff_deregisters_immediately() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.apply(sim.lease.stream_failed(T0 + 5, 1, "UNAVAILABLE"))
    assert sim.lease.state is S.BACKING_OFF
    actions = sim.lease.stop(T0 + 5.1)
    assert commands(actions) == [Deregister("inst-1")]
    assert moves(actions) == [(S.BACKING_OFF, S.DEREGISTERING, Reason.STOP)]
    assert sim.lease.next_deadline is None  # the backoff timer is gone
    assert moves(sim.lease.deregistered(T0 + 5.2)) == [
        (S.DEREGISTERING, S.STOPPED, Reason.DEREGISTERED)
    ]
    assert sim.lease.stop(T0 + 6) == []


def test_stop_while_beating_closes_the_stream_and_deregisters() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.run(T0 + 30)
    assert commands(sim.lease.stop(T0 + 30)) == [CloseStream(1), Deregister("inst-1")]
    assert sim.lease.stop(T0 + 30) == []  # idempotent, also while deregistering
    assert moves(sim.lease.deregister_failed(T0 + 31, "UNAVAILABLE")) == [
        (S.DEREGISTERING, S.STOPPED, Reason.DEREGISTER_FAILED)
    ]


def test_nothing_is_acted_on_after_stop() -> None:
    sim = Sim(ttl=60)
    sim.start()
    sim.auto_answer = False
    sim.run(T0 + 20)
    sim.lease.stop(T0 + 21)
    assert sim.lease.beat_answered(T0 + 21, 1, 0) == []  # no zombie re-register
    assert sim.lease.stream_ended(T0 + 21, 1) == []
    assert sim.lease.poll(T0 + 100) == []
    assert sim.lease.next_deadline is None


def test_stop_without_deregistering() -> None:
    sim = Sim(ttl=60)
    sim.start()
    actions = sim.lease.stop(T0 + 1, deregister=False)
    assert commands(actions) == [CloseStream(1)]
    assert moves(actions) == [(S.BEATING, S.STOPPED, Reason.STOP)]


def test_stop_before_start_and_during_the_first_register() -> None:
    lease = Lease("k", 30, rand=cycle(0.5))
    assert moves(lease.stop(T0)) == [(S.IDLE, S.STOPPED, Reason.STOP)]

    lease = Lease("", 30, rand=cycle(0.5))
    lease.start(T0)
    assert moves(lease.stop(T0)) == [(S.REGISTERING, S.STOPPING, Reason.STOP)]
    actions = lease.registered(T0 + 1, "server-made", int(T0) + 31)  # lands after stop
    assert commands(actions) == [Deregister("server-made")]

    lease = Lease("k", 30, rand=cycle(0.5))
    lease.start(T0)
    lease.stop(T0)
    assert moves(lease.register_failed(T0 + 1, "UNAVAILABLE")) == [
        (S.STOPPING, S.STOPPED, Reason.STOP)
    ]


def test_stop_during_a_delayed_reregister_deregisters_the_key() -> None:
    sim = Sim(ttl=30)
    sim.start()
    sim.run(T0 + 10)
    sim.answer = lambda now: 0
    sim.run(T0 + 20)
    sim.lease.register_failed(T0 + 20, "UNAVAILABLE")
    assert commands(sim.lease.stop(T0 + 20.1)) == [CloseStream(1), Deregister("inst-1")]


# --- the log and the table ------------------------------------------------------------


def test_history_is_bounded_and_repr_is_short() -> None:
    lease = Lease("k", 60, LeaseParams(history=2), rand=cycle(0.5))
    lease.start(T0)
    lease.registered(T0, "k", int(T0) + 60)
    lease.stop(T0)
    assert [e.state for e in lease.history] == [S.BEATING, S.DEREGISTERING]
    assert (
        repr(lease)
        == f"Lease(state=DEREGISTERING, instance_key='k', ttl=60, expires_at={int(T0) + 60})"
    )


def test_every_state_has_a_row_and_every_resting_state_can_stop() -> None:
    assert set(_TRANSITIONS) == set(LeaseState)
    assert {s for s, targets in _TRANSITIONS.items() if not targets} == {S.STOPPED}
    stop_targets = {S.STOPPING, S.DEREGISTERING, S.STOPPED}
    stoppable = {s for s, targets in _TRANSITIONS.items() if targets & stop_targets}
    assert stoppable == set(LeaseState) - {S.LEASE_LOST, S.STOPPED}  # LEASE_LOST is transient


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval_fraction": 0.0},
        {"min_interval": 0.0},
        {"answer_timeout": float("inf")},
        {"history": -1},
    ],
)
def test_invalid_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LeaseParams(**kwargs)  # type: ignore[arg-type]


# --- the property behind G3/G4 --------------------------------------------------------


@given(
    ttl=st.integers(3, 120),
    kills=st.integers(0, 8),
    rands=st.lists(st.floats(0.0, 0.999_999), min_size=1, max_size=8),
    first_kill=st.floats(0.0, 1.0),
)
def test_while_the_lease_lives_a_reopen_is_at_most_one_interval_away(
    ttl: int, kills: int, rands: list[float], first_kill: float
) -> None:
    sim = Sim(ttl=ttl, rand=cycle(*rands))
    sim.start()
    sim.run(T0 + sim.lease.interval * (1 + first_kill))
    sim.auto_answer = False
    for _ in range(kills):  # every reopened stream dies as soon as it opens
        failed_at = sim.now
        alive = failed_at < sim.lease.lease_deadline
        sim.apply(sim.lease.stream_failed(failed_at, sim.stream, "UNAVAILABLE"))
        retry_at = sim.lease.retry_at
        assert retry_at is not None
        assert retry_at - failed_at <= (sim.lease.interval if alive else 30.0)
        sim.run(retry_at)
    healthy_from = sim.now  # from here on the server answers everything
    sim.auto_answer = True
    sim.answer_pending()
    sent_before = len(sim.beats)
    sim.run(healthy_from + 2 * sim.lease.interval)
    assert sim.lease.state is S.BEATING
    assert sim.beats[sent_before] <= healthy_from + sim.lease.interval  # renewed in time
