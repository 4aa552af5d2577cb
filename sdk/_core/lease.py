"""Self-registration as a state machine: register, beat, recover, stop (CONTRACT 3.5, G1-G5).

Rules (``sent`` is the local time at which the renewing Register or beat was sent):
    start                         IDLE -> REGISTERING              Register(key)
    registered                    -> BEATING                       OpenStream if none is open;
                                  first beat at sent + interval (not a full TTL, G3)
    register failed (first time)  REGISTERING -> FAILED            (the shell raises)
    beat due, none unanswered     SendBeat                         one beat in flight at most
    answer > 0                    REOPENING -> BEATING; next beat at sent + interval;
                                  lease deadline sent + ttl - 1; backoff count reset
    answer 0 (G1)                 -> LEASE_LOST -> RE_REGISTERING  Register(...):
        the registration had answered beats, or was the first one    same key, at once
        none answered after a same-key re-register (3.10-1 quirk)    a NEW key: Register(""),
                                                                     a warning event
        none answered since a NEW key was taken                      same key, after backoff
    stream ended, beat unanswered (G2)            -> LEASE_LOST -> RE_REGISTERING, same key
    stream failed / ended idle / answer timeout   -> BACKING_OFF (CloseStream) for
                                  backoff.delay(count, rand), capped at the interval while the
                                  lease lives (a TTL <= 10 s must not lapse); once it has
                                  lapsed, the full backoff up to 30 s (G4)
    backoff over                  BACKING_OFF -> REOPENING         OpenStream (fresh token, G5)
    re-register failed            stays RE_REGISTERING             Register again after backoff
    lease deadline passed         LEASE_EXPIRED event (no move): the next beat revives it (3.2)
    stop, any state               -> DEREGISTERING   CloseStream, Deregister(key)
                                  -> STOPPING        while a Register is in flight (then
                                                     deregister what it registered)
                                  -> STOPPED         nothing registered, or deregister=False
                                  a second stop does nothing; after stop no event is acted on
    deregistered / failed         DEREGISTERING -> STOPPED

Times are local-clock floats. The server's ``expires_at`` is kept for observers but never
compared with the local clock (3.9: skew): deadlines are anchored on when the renewing
message was *sent*, which the server can only have processed later, with ``ttl - 1`` because
the server truncates its clock to whole seconds. Streams carry ids so the late outcome of an
old stream is ignored. Inputs return the actions to run, in order; between inputs, the
shell waits until ``next_deadline`` (or an input) and then calls ``poll``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

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

__all__ = ["Lease"]

_LIVE = frozenset({LeaseState.BEATING, LeaseState.REOPENING, LeaseState.BACKING_OFF})
_ENDED = frozenset({LeaseState.STOPPING, LeaseState.DEREGISTERING, LeaseState.STOPPED})
S = LeaseState
# Every allowed move; _move refuses anything else (h11's _state.py keeps the same discipline).
_TRANSITIONS: dict[LeaseState, frozenset[LeaseState]] = {
    S.IDLE: frozenset({S.REGISTERING, S.STOPPED}),
    S.REGISTERING: frozenset({S.BEATING, S.FAILED, S.STOPPING}),
    S.BEATING: frozenset({S.BACKING_OFF, S.LEASE_LOST, S.DEREGISTERING, S.STOPPED}),
    S.BACKING_OFF: frozenset({S.REOPENING, S.DEREGISTERING, S.STOPPED}),
    S.REOPENING: frozenset({S.BEATING, S.BACKING_OFF, S.LEASE_LOST, S.DEREGISTERING, S.STOPPED}),
    S.LEASE_LOST: frozenset({S.RE_REGISTERING}),
    S.RE_REGISTERING: frozenset({S.BEATING, S.STOPPING, S.DEREGISTERING, S.STOPPED}),
    S.STOPPING: frozenset({S.DEREGISTERING, S.STOPPED}),
    S.DEREGISTERING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset(),
    S.FAILED: frozenset({S.STOPPED}),
}
del S


class Lease:
    """One registration's lifecycle. Not thread-safe: one shell loop drives it.

    Args:
        instance_key: The key to register (``""``: the server generates one).
        ttl_seconds: The requested TTL; ``<= 0`` means the server's default of 60 s.
        params: Heartbeat timing.
        rand: Uniform numbers in ``[0, 1)`` for backoff jitter.
    """

    def __init__(
        self,
        instance_key: str,
        ttl_seconds: int,
        params: LeaseParams | None = None,
        *,
        rand: Callable[[], float],
    ) -> None:
        self._params = params or LeaseParams()
        self._rand = rand
        self._key = instance_key
        self._ttl = effective_ttl(ttl_seconds)
        self._interval = self._params.interval(self._ttl)
        self._answer_timeout = min(self._params.answer_timeout, self._interval)
        self._state = LeaseState.IDLE
        self._history: deque[LeaseEvent] = deque(maxlen=self._params.history)
        self._expires_at = 0  # server clock, as last answered
        self._deadline = -math.inf  # local: the lease surely holds until then
        self._next_beat_at = math.inf
        self._stream = 0  # id of the open stream; 0: none
        self._streams_opened = 0
        self._beat_sent_at: float | None = None  # the unanswered beat
        self._register_sent_at: float | None = None  # the Register in flight
        self._asked_new_key = False  # ... and whether it asked the server for a new key
        self._retry_at: float | None = None  # end of a backoff, or a delayed Register
        self._failures = 0  # backoff attempt count, reset by an answered beat
        self._answered = 0  # beats answered > 0 since the last registration
        self._replaced = False  # a NEW_KEY register happened since the last answered beat
        self._same_key_again = False  # the current registration re-registered the same key
        self._registered = False  # something was registered at least once
        self._lapse_reported = False
        self._deregister = True

    def __repr__(self) -> str:
        return (
            f"Lease(state={self._state.name}, instance_key={self._key!r}, ttl={self._ttl}, "
            f"expires_at={self._expires_at})"
        )

    # --- observing ------------------------------------------------------------------------

    @property
    def params(self) -> LeaseParams:
        return self._params

    @property
    def state(self) -> LeaseState:
        return self._state

    @property
    def instance_key(self) -> str:
        """The current key (it changes after a NEW_KEY re-register)."""
        return self._key

    @property
    def ttl(self) -> int:
        """The effective TTL in seconds."""
        return self._ttl

    @property
    def interval(self) -> float:
        """Seconds between beats."""
        return self._interval

    @property
    def expires_at(self) -> int:
        """The server's latest lease expiry (server clock); 0 before any."""
        return self._expires_at

    @property
    def lease_deadline(self) -> float:
        """Local time until which the lease surely holds (``-inf`` before registering)."""
        return self._deadline

    @property
    def retry_at(self) -> float | None:
        """When a backoff ends (reopen or delayed Register); ``None`` when none runs."""
        return self._retry_at

    @property
    def history(self) -> tuple[LeaseEvent, ...]:
        """The latest events, oldest first."""
        return tuple(self._history)

    @property
    def next_deadline(self) -> float | None:
        """When ``poll`` must run next; ``None``: only an input can change anything."""
        times: list[float] = []
        state = self._state
        if state in (LeaseState.BEATING, LeaseState.REOPENING):
            if self._beat_sent_at is not None:
                times.append(self._beat_sent_at + self._answer_timeout)
            elif self._stream:
                times.append(self._next_beat_at)
        if self._retry_at is not None and state in (
            LeaseState.BACKING_OFF,
            LeaseState.RE_REGISTERING,
        ):
            times.append(self._retry_at)
        if state in _LIVE and not self._lapse_reported:
            times.append(self._deadline)
        return min(times) if times else None

    # --- inputs ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Action]:
        """Begin: register the instance."""
        out: list[Action] = []
        if self._state is LeaseState.IDLE:
            self._move(LeaseState.REGISTERING, Reason.START, now, out)
            self._send_register(self._key, now, out)
        return out

    def registered(self, now: float, instance_key: str, expires_at: int) -> list[Action]:
        """RegisterInstance answered: the key it stored and its ``expires_at``."""
        out: list[Action] = []
        sent = self._register_sent_at
        if sent is None:
            return out  # no Register in flight: a stray answer
        self._register_sent_at = None
        self._registered = True
        self._key = instance_key
        self._expires_at = expires_at
        if self._state is LeaseState.STOPPING:
            self._finish_stop(now, out)
            return out
        self._replaced = self._replaced or self._asked_new_key
        self._same_key_again = self._state is LeaseState.RE_REGISTERING and not self._asked_new_key
        self._answered = 0
        self._deadline = sent + self._ttl - 1
        self._next_beat_at = sent + self._interval
        self._lapse_reported = False
        if not self._stream:
            self._open(out)
        self._move(LeaseState.BEATING, Reason.REGISTERED, now, out)
        return out

    def register_failed(self, now: float, code: str) -> list[Action]:
        """RegisterInstance failed with status ``code``."""
        out: list[Action] = []
        if self._register_sent_at is None:
            return out
        self._register_sent_at = None
        if self._state is LeaseState.REGISTERING:
            self._move(LeaseState.FAILED, Reason.REGISTER_FAILED, now, out, code)
        elif self._state is LeaseState.STOPPING:
            self._finish_stop(now, out)
        else:  # RE_REGISTERING: keep trying, the instance is invisible until it works
            self._retry_at = now + self._delay(cap=None)
            self._notice(Reason.REGISTER_FAILED, now, out, code)
        return out

    def beat_answered(self, now: float, stream: int, expires_at: int) -> list[Action]:
        """Stream ``stream`` answered the unanswered beat with ``expires_at``."""
        out: list[Action] = []
        sent = self._beat_sent_at
        if stream != self._stream or sent is None or self._state not in _LIVE:
            return out
        self._beat_sent_at = None
        if expires_at <= 0:
            self._lose_lease(now, Reason.LEASE_ZERO, out)
            return out
        self._expires_at = expires_at
        self._deadline = max(self._deadline, sent + self._ttl - 1)
        self._next_beat_at = sent + self._interval
        self._failures = 0
        self._answered += 1
        self._replaced = False
        self._lapse_reported = False
        if self._state is LeaseState.REOPENING:
            self._move(LeaseState.BEATING, Reason.BEAT_OK, now, out)
        return out

    def stream_failed(self, now: float, stream: int, code: str) -> list[Action]:
        """Stream ``stream`` ended with a non-OK status ``code``."""
        out: list[Action] = []
        if stream == self._stream and self._state not in _ENDED:
            self._drop_stream(out)
            if self._state in _LIVE:
                self._back_off(now, Reason.STREAM_FAILED, code, out)
        return out

    def stream_ended(self, now: float, stream: int) -> list[Action]:
        """Stream ``stream`` ended with status OK (the real server never does this)."""
        out: list[Action] = []
        if stream != self._stream or self._state in _ENDED:
            return out
        unanswered = self._beat_sent_at is not None
        self._drop_stream(out)
        if self._state in _LIVE:
            if unanswered:  # the beat may never have been processed: renew by registering
                self._lose_lease(now, Reason.STREAM_ENDED, out)
            else:
                self._back_off(now, Reason.STREAM_ENDED, "OK", out)
        return out

    def poll(self, now: float) -> list[Action]:
        """Run whatever is due at ``now``: beats, answer timeouts, reopen, delayed Register."""
        out: list[Action] = []
        state = self._state
        if state is LeaseState.BACKING_OFF and self._retry_at is not None and now >= self._retry_at:
            self._retry_at = None
            self._open(out)
            self._move(LeaseState.REOPENING, Reason.REOPEN, now, out)
        elif (
            state is LeaseState.RE_REGISTERING
            and self._retry_at is not None
            and now >= self._retry_at
        ):
            self._retry_at = None
            self._send_register(self._key, now, out)
        if self._state in (LeaseState.BEATING, LeaseState.REOPENING):
            sent = self._beat_sent_at
            if sent is not None and now >= sent + self._answer_timeout:
                self._drop_stream(out)
                self._back_off(now, Reason.ANSWER_TIMEOUT, "", out)
            elif sent is None and self._stream and now >= self._next_beat_at:
                self._beat_sent_at = now
                out.append(SendBeat(self._stream, self._key))
        if self._state in _LIVE and not self._lapse_reported and now >= self._deadline:
            self._lapse_reported = True
            self._notice(Reason.LEASE_EXPIRED, now, out)
        return out

    def stop(self, now: float, *, deregister: bool = True) -> list[Action]:
        """Stop from any state; a second call does nothing.

        Args:
            now: Local time.
            deregister: Whether to call DeregisterInstance (``False`` lets the lease lapse).
        """
        out: list[Action] = []
        if self._state in _ENDED:
            return out
        self._deregister = deregister
        self._retry_at = None
        self._drop_stream(out)
        if self._register_sent_at is not None:
            self._move(LeaseState.STOPPING, Reason.STOP, now, out)
        else:
            self._finish_stop(now, out)
        return out

    def deregistered(self, now: float) -> list[Action]:
        """DeregisterInstance succeeded."""
        out: list[Action] = []
        if self._state is LeaseState.DEREGISTERING:
            self._move(LeaseState.STOPPED, Reason.DEREGISTERED, now, out)
        return out

    def deregister_failed(self, now: float, code: str) -> list[Action]:
        """DeregisterInstance failed with ``code``: stop anyway (the lease will lapse)."""
        out: list[Action] = []
        if self._state is LeaseState.DEREGISTERING:
            self._move(LeaseState.STOPPED, Reason.DEREGISTER_FAILED, now, out, code)
        return out

    # --- internals ------------------------------------------------------------------------

    def _move(
        self, target: LeaseState, reason: Reason, now: float, out: list[Action], detail: str = ""
    ) -> None:
        previous = self._state
        if target not in _TRANSITIONS[previous]:
            raise RuntimeError(f"lease cannot move from {previous.name} to {target.name}")
        self._state = target
        self._record(LeaseEvent(now, previous, target, reason, self._key, detail), out)

    def _notice(self, reason: Reason, now: float, out: list[Action], detail: str = "") -> None:
        self._record(LeaseEvent(now, self._state, self._state, reason, self._key, detail), out)

    def _record(self, event: LeaseEvent, out: list[Action]) -> None:
        self._history.append(event)
        out.append(Emit(event))

    def _send_register(
        self, key: str, now: float, out: list[Action], *, new_key: bool = False
    ) -> None:
        self._register_sent_at = now
        self._asked_new_key = new_key
        out.append(Register(key))

    def _open(self, out: list[Action]) -> None:
        self._streams_opened += 1
        self._stream = self._streams_opened
        out.append(OpenStream(self._stream))

    def _drop_stream(self, out: list[Action]) -> None:
        if self._stream:
            out.append(CloseStream(self._stream))
        self._stream = 0
        self._beat_sent_at = None

    def _delay(self, cap: float | None) -> float:
        delay = self._params.backoff.delay(self._failures, self._rand(), cap)
        self._failures += 1
        return delay

    def _back_off(self, now: float, reason: Reason, detail: str, out: list[Action]) -> None:
        # While the lease holds, never wait longer than one interval: a TTL of a few seconds
        # must get a reopen (and a beat) in before it lapses. Once lapsed, the full backoff.
        cap = self._interval if now < self._deadline else None
        self._retry_at = now + self._delay(cap)
        self._move(LeaseState.BACKING_OFF, reason, now, out, detail)

    def _lose_lease(self, now: float, reason: Reason, out: list[Action]) -> None:
        self._deadline = -math.inf  # the server said so (or may have): nothing holds now
        self._move(LeaseState.LEASE_LOST, reason, now, out)
        fresh_zero = reason is Reason.LEASE_ZERO and self._answered == 0
        if fresh_zero and self._replaced:
            # Even a replacement key beats 0: a persistent server problem, not the quirk.
            self._move(LeaseState.RE_REGISTERING, Reason.SAME_KEY, now, out)
            self._retry_at = now + self._delay(cap=None)
        elif fresh_zero and self._same_key_again:
            # A fresh re-register that still beats 0: the re-register-after-deregister quirk
            # (3.10-1) hides this key for good. Let the server generate a new one.
            self._move(LeaseState.RE_REGISTERING, Reason.NEW_KEY, now, out, self._key)
            self._send_register("", now, out, new_key=True)
        else:
            self._move(LeaseState.RE_REGISTERING, Reason.SAME_KEY, now, out)
            self._send_register(self._key, now, out)

    def _finish_stop(self, now: float, out: list[Action]) -> None:
        if self._deregister and self._registered:
            self._move(LeaseState.DEREGISTERING, Reason.STOP, now, out)
            out.append(Deregister(self._key))
        else:
            self._move(LeaseState.STOPPED, Reason.STOP, now, out)
