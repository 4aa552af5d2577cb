"""The values the lease state machine takes and returns: timing, states, events, actions.

``sdk._core.lease`` holds the machine and its rules; these are split off to keep each module
to one concept. Everything here is an immutable value.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import TypeAlias

from sdk._core.backoff import Backoff

__all__ = [
    "DEFAULT_TTL",
    "REOPEN_BACKOFF",
    "Action",
    "CloseStream",
    "Deregister",
    "Emit",
    "LeaseEvent",
    "LeaseParams",
    "LeaseState",
    "OpenStream",
    "Reason",
    "Register",
    "SendBeat",
    "effective_ttl",
]

#: G4: 1 s, doubling, capped at 30 s, full jitter.
REOPEN_BACKOFF = Backoff(initial=1.0, multiplier=2.0, maximum=30.0, jitter="full")
#: The TTL the server applies when a request carries ``ttl_seconds <= 0`` (CONTRACT 1.3).
DEFAULT_TTL = 60


def effective_ttl(requested: int) -> int:
    """The lease length the server applies to a RegisterInstance ``ttl_seconds``."""
    return requested if requested > 0 else DEFAULT_TTL


@dataclass(frozen=True, slots=True)
class LeaseParams:
    """Heartbeat timing.

    Attributes:
        interval_fraction: Beat interval as a fraction of the effective TTL.
        min_interval: Floor of the beat interval, in seconds.
        answer_timeout: Longest wait for a beat's answer before the stream counts as broken;
            never more than the interval.
        backoff: Delays before reopening the stream or retrying a re-register.
        history: How many events ``Lease.history`` keeps.
    """

    interval_fraction: float = 1 / 3
    min_interval: float = 1.0
    answer_timeout: float = 10.0
    backoff: Backoff = REOPEN_BACKOFF
    history: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.interval_fraction <= 1:
            raise ValueError(f"interval_fraction must be in (0, 1], got {self.interval_fraction}")
        for name in ("min_interval", "answer_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.history < 0:
            raise ValueError(f"history must be >= 0, got {self.history}")

    def interval(self, ttl: float) -> float:
        """Seconds between beats for an effective ``ttl``."""
        return max(self.min_interval, ttl * self.interval_fraction)


class LeaseState(enum.Enum):
    """Where a registration is.

    IDLE: created, not started. REGISTERING: the first Register is in flight.
    BEATING: registered, beats flow on an open stream. BACKING_OFF: the stream broke; waiting
    to reopen. REOPENING: a new stream is open, no beat answered on it yet.
    LEASE_LOST: the server answered 0 (passed through at once). RE_REGISTERING: registering
    again (same or new key), possibly after a delay. STOPPING: stop came while a Register was
    in flight. DEREGISTERING: the Deregister is in flight. STOPPED: done.
    FAILED: the first Register failed; nothing runs.
    """

    IDLE = "idle"
    REGISTERING = "registering"
    BEATING = "beating"
    BACKING_OFF = "backing_off"
    REOPENING = "reopening"
    LEASE_LOST = "lease_lost"
    RE_REGISTERING = "re_registering"
    STOPPING = "stopping"
    DEREGISTERING = "deregistering"
    STOPPED = "stopped"
    FAILED = "failed"


class Reason(enum.Enum):
    """Why an event was emitted."""

    START = "start"
    REGISTERED = "registered"
    REGISTER_FAILED = "register_failed"
    BEAT_OK = "beat_ok"
    STREAM_FAILED = "stream_failed"
    STREAM_ENDED = "stream_ended"
    ANSWER_TIMEOUT = "answer_timeout"
    REOPEN = "reopen"
    LEASE_ZERO = "lease_zero"
    SAME_KEY = "same_key"
    NEW_KEY = "new_key"
    LEASE_EXPIRED = "lease_expired"
    STOP = "stop"
    DEREGISTERED = "deregistered"
    DEREGISTER_FAILED = "deregister_failed"

    @property
    def warning(self) -> bool:
        """Whether the shell should log this at WARNING rather than INFO/DEBUG."""
        return self in _WARNINGS


_WARNINGS = frozenset(
    {Reason.NEW_KEY, Reason.LEASE_EXPIRED, Reason.REGISTER_FAILED, Reason.DEREGISTER_FAILED}
)


@dataclass(frozen=True, slots=True)
class LeaseEvent:
    """One entry of the transition log, also handed to callbacks.

    Attributes:
        at: Local time.
        previous: State before; equals ``state`` for notices that move nothing.
        state: State after.
        reason: Why.
        instance_key: The key at that moment (``""`` before the server assigned one).
        detail: A status code name or other short text; ``""`` if none.
    """

    at: float
    previous: LeaseState
    state: LeaseState
    reason: Reason
    instance_key: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Register:
    """Call RegisterInstance with the stored request and this key (``""``: server picks)."""

    instance_key: str


@dataclass(frozen=True, slots=True)
class OpenStream:
    """Open HeartbeatStream number ``stream`` with a fresh token; report its outcomes by id."""

    stream: int


@dataclass(frozen=True, slots=True)
class SendBeat:
    """Send one HeartbeatRequest for ``instance_key`` on stream ``stream``."""

    stream: int
    instance_key: str


@dataclass(frozen=True, slots=True)
class CloseStream:
    """Cancel stream ``stream`` and drop it (it may already be dead)."""

    stream: int


@dataclass(frozen=True, slots=True)
class Deregister:
    """Call DeregisterInstance for ``instance_key`` (once, with its own deadline)."""

    instance_key: str


@dataclass(frozen=True, slots=True)
class Emit:
    """Hand ``event`` to callbacks and logging."""

    event: LeaseEvent


Action: TypeAlias = Register | OpenStream | SendBeat | CloseStream | Deregister | Emit
