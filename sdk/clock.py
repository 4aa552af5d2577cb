"""Clocks: the SDK reads time and waits only through a :class:`Clock`.

Token expiry, lease renewal, heartbeat spacing, backoff and discovery
cooldowns all read the clock given in the client's constructor, and every
wait the SDK does in a background thread goes through
:meth:`Clock.wait_until`. Production code uses :class:`SystemClock`; tests
pass :class:`sdk.testing.ManualClock`, whose ``advance()`` wakes those waits
at once, so a 60 s lease or a 30 s backoff is crossed without sleeping.

The protocol is structural and deliberately the same shape as the fake
registry's clock (``fake_registry.clock``): its ``ManualClock`` satisfies
this protocol and ours satisfies the fake's, so a test can share one clock
object between the fake server and SDK clients. The SDK does not import the
fake; a test checks that the two stay compatible.

Cancelling a wait: set the ``cancel`` event, then call :meth:`Clock.wake`.
Clocks that block on a condition variable (manual clocks) cannot see an event
being set, so ``wake()`` makes them re-check; clocks that wait on the event
itself (``SystemClock``) need no wake-up, and their ``wake()`` does nothing.
"""

from __future__ import annotations

import math
import threading
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the SDK needs from a clock.

    ``time()`` is for comparing with server timestamps (token ``expires_at``,
    lease expiry); ``monotonic()`` is for intervals and every deadline the
    SDK waits for. Implementations must be thread-safe.
    """

    def time(self) -> float:
        """Current Unix time in seconds (virtual for manual clocks)."""
        ...

    def monotonic(self) -> float:
        """A never-decreasing reading in seconds, for intervals and deadlines."""
        ...

    def wait_until(
        self,
        deadline: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Block until ``monotonic() >= deadline``.

        Args:
            deadline: a ``monotonic()`` reading; one already reached returns
                ``True`` at once, even if ``cancel`` is set.
            cancel: when set (followed by :meth:`wake`), the wait ends early.
                ``None`` waits for the deadline only.
            timeout: a bound in *real* seconds, whatever the clock; ``None``
                waits without bound.

        Returns:
            ``True`` if the deadline was reached, ``False`` if the wait was
            cancelled or timed out. Callers re-check their own cancel event
            after a ``True``.
        """
        ...

    def wake(self) -> None:
        """Make every waiter re-check its cancel event (call after ``set()``)."""
        ...


class SystemClock:
    """Real time: ``time.time()``, ``time.monotonic()``, waits on the cancel event.

    ``wait_until`` sleeps on the cancel event itself, so setting the event
    ends the wait immediately and :meth:`wake` has nothing to do.
    """

    __slots__ = ()

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    def wait_until(
        self,
        deadline: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        if math.isnan(deadline):
            raise ValueError("deadline must be a number, not NaN")
        # An event nobody sets: a plain timed sleep that still loops on the
        # monotonic clock (Event.wait may return a little early).
        event = cancel if cancel is not None else threading.Event()
        end = None if timeout is None else _time.monotonic() + timeout
        while True:
            now = _time.monotonic()
            if now >= deadline:
                return True
            if event.is_set():
                return False
            remaining = deadline - now
            if end is not None:
                if now >= end:
                    return False
                remaining = min(remaining, end - now)
            # Event.wait rejects infinities; cap a huge wait and loop instead.
            event.wait(min(remaining, threading.TIMEOUT_MAX) if math.isfinite(remaining) else None)

    def wake(self) -> None:
        """Nothing to do: waits watch their cancel event directly."""

    def __repr__(self) -> str:
        return "SystemClock()"
