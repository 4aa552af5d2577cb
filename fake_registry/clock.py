"""Clocks: the fake reads time only through one of these.

The documented shape (the :class:`Clock` protocol) is deliberately small: the
fake needs ``time()`` (Unix seconds, used for tokens and leases) and
``monotonic()``. Any object with these methods works, so the SDK's own clock
and the fake can share one :class:`ManualClock` in a test.

``ManualClock`` moves only when told to. ``advance()`` and ``set_time()`` wake
every :meth:`ManualClock.wait_until` caller whose deadline has passed and call
the registered listeners, so code that waits on virtual time (the SDK's
heartbeat, the fake's virtual delays) reacts in microseconds, without sleeping.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "OffsetClock", "SystemClock"]

#: 2023-11-14T22:13:20Z: a fixed, recognisable start for manual clocks.
DEFAULT_MANUAL_START = 1_700_000_000.0


@runtime_checkable
class Clock(Protocol):
    """What the fake needs from a clock."""

    def time(self) -> float:
        """Current Unix time in seconds (virtual for manual clocks)."""
        ...

    def monotonic(self) -> float:
        """A never-decreasing reading in seconds, for intervals."""
        ...


class SystemClock:
    """Real time: ``time.time()`` and ``time.monotonic()``."""

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()

    def __repr__(self) -> str:
        return "SystemClock()"


class OffsetClock:
    """Real time plus an adjustable offset (the standalone fake's clock).

    ``advance()`` and ``set_time()`` move the offset, so a control plane can
    jump the fake's notion of time forward while it keeps ticking in real time.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._mono_offset = max(offset, 0.0)  # only ever grows: monotonic never goes back
        self._lock = threading.Lock()
        self._listeners: list[Callable[[float], None]] = []

    def time(self) -> float:
        return _time.time() + self._offset

    def monotonic(self) -> float:
        return _time.monotonic() + self._mono_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0 (got {seconds})")
        with self._lock:
            self._offset += seconds
            self._mono_offset += seconds
        self._notify()

    def set_time(self, unix_seconds: float) -> None:
        with self._lock:
            new_offset = unix_seconds - _time.time()
            self._mono_offset += max(new_offset - self._offset, 0.0)
            self._offset = new_offset
        self._notify()

    def add_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(new_unix_time)`` after every jump."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[float], None]) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        now = self.time()
        for listener in listeners:
            listener(now)

    def __repr__(self) -> str:
        return f"OffsetClock(offset={self._offset:.3f})"


class ManualClock:
    """A clock that moves only when :meth:`advance` or :meth:`set_time` is called.

    Args:
        start: the initial Unix time. ``monotonic()`` starts at 0 and moves by
            the same amounts as ``time()`` moves forward.

    Thread-safe. Waiters block on a condition variable and are woken by every
    move; listeners are called after each move, outside the lock, with the new
    Unix time (used to wake waiters on other event loops).
    """

    def __init__(self, start: float = DEFAULT_MANUAL_START) -> None:
        self._time = float(start)
        self._monotonic = 0.0
        self._cond = threading.Condition()
        self._listeners: list[Callable[[float], None]] = []

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (>= 0) and wake due waiters."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0 (got {seconds})")
        with self._cond:
            self._time += seconds
            self._monotonic += seconds
            self._cond.notify_all()
        self._notify()

    def set_time(self, unix_seconds: float) -> None:
        """Jump ``time()`` to ``unix_seconds``; ``monotonic()`` never goes back."""
        with self._cond:
            delta = unix_seconds - self._time
            self._time = float(unix_seconds)
            self._monotonic += max(delta, 0.0)
            self._cond.notify_all()
        self._notify()

    def wait_until(
        self,
        deadline: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Block until ``monotonic() >= deadline``.

        Args:
            deadline: a ``monotonic()`` reading.
            cancel: when set (and :meth:`wake` is called, or the clock moves),
                the wait ends early.
            timeout: a bound in *real* seconds; ``None`` waits without bound.

        Returns:
            ``True`` if the deadline was reached, ``False`` if cancelled or timed out.
        """
        end = None if timeout is None else _time.monotonic() + timeout
        with self._cond:
            while self._monotonic < deadline:
                if cancel is not None and cancel.is_set():
                    return False
                remaining = None if end is None else end - _time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def wake(self) -> None:
        """Wake all waiters so they re-check their cancel events."""
        with self._cond:
            self._cond.notify_all()

    def add_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(new_unix_time)`` after every move."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[float], None]) -> None:
        with self._cond:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        with self._cond:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(self._time)

    def __repr__(self) -> str:
        return f"ManualClock(time={self._time:.3f})"
