"""Test helpers for code that uses the SDK.

:class:`ManualClock` is a clock that moves only when the test says so. Give
the same object to the SDK client under test and to an in-process fake
registry (``fake_registry.FakeRegistry(clock=...)``): ``advance(3600)`` then
expires tokens and leases on both sides at once and wakes every SDK wait
whose deadline passed, so heartbeats, backoff and cooldowns run without
sleeping::

    from sdk.testing import ManualClock

    clock = ManualClock()
    ...  # start a client with clock=clock in a thread
    clock.wait_blocked(1)  # the heartbeat thread is now waiting
    clock.advance(20)      # and runs its next beat

It satisfies both :class:`sdk.clock.Clock` and the fake's clock shape
(``time()``, ``monotonic()``, ``advance()``, ``set_time()``,
``add_listener()``, ``remove_listener()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time as _time
from collections.abc import Callable, Iterator

__all__ = ["DEFAULT_START", "ManualClock"]

#: 2023-11-14T22:13:20Z, the fake's default too: a fixed, recognisable start.
DEFAULT_START = 1_700_000_000.0


def _finite(name: str, value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite (got {value!r})")
    return number


class ManualClock:
    """A thread-safe clock that moves only by :meth:`advance` or :meth:`set_time`.

    Args:
        start: the initial Unix time. ``monotonic()`` starts at ``0.0`` and
            moves forward by the same amounts as ``time()``; it never goes
            back, even when ``set_time()`` moves ``time()`` backwards.

    Every move wakes the threads blocked in :meth:`wait_until` (those whose
    deadline passed return ``True``) and then calls each listener with the
    new Unix time, outside the lock, so an asyncio loop can be woken with
    ``loop.call_soon_threadsafe``.
    """

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._time = _finite("start", start)
        self._monotonic = 0.0
        self._cond = threading.Condition()
        self._listeners: list[Callable[[float], None]] = []
        # Deadlines of the threads blocked in wait_until, one entry each.
        self._waiting: list[float] = []

    def time(self) -> float:
        """The current virtual Unix time in seconds."""
        with self._cond:
            return self._time

    def monotonic(self) -> float:
        """The virtual monotonic reading: seconds moved forward since creation."""
        with self._cond:
            return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both readings forward by ``seconds`` and wake due waiters.

        Args:
            seconds: how far; ``0`` only wakes waiters and listeners.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        step = _finite("seconds", seconds)
        if step < 0:
            raise ValueError(f"seconds must be >= 0 (got {seconds!r})")
        with self._cond:
            self._time += step
            self._monotonic += step
            now = self._time
            self._cond.notify_all()
        self._notify(now)

    def set_time(self, unix_seconds: float) -> None:
        """Jump ``time()`` to ``unix_seconds``.

        A jump forward moves ``monotonic()`` by the same amount; a jump back
        leaves it where it is (monotonic readings never decrease), as a
        wall-clock correction would.

        Raises:
            ValueError: ``unix_seconds`` is not finite.
        """
        target = _finite("unix_seconds", unix_seconds)
        with self._cond:
            self._monotonic += max(target - self._time, 0.0)
            self._time = target
            self._cond.notify_all()
        self._notify(target)

    def wait_until(
        self,
        deadline: float,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
    ) -> bool:
        """Block until ``monotonic() >= deadline`` (see :meth:`sdk.clock.Clock.wait_until`).

        Args:
            deadline: a ``monotonic()`` reading.
            cancel: checked whenever the clock moves or :meth:`wake` is called.
            timeout: a bound in real seconds; ``None`` waits without bound.

        Returns:
            ``True`` when the deadline is reached (a deadline already reached
            wins over ``cancel``), ``False`` when cancelled or timed out.
        """
        if math.isnan(deadline):
            raise ValueError("deadline must be a number, not NaN")
        end = None if timeout is None else _time.monotonic() + timeout
        with self._cond:
            self._waiting.append(deadline)
            self._cond.notify_all()  # for wait_blocked()
            try:
                while self._monotonic < deadline:
                    if cancel is not None and cancel.is_set():
                        return False
                    remaining = None if end is None else end - _time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._waiting.remove(deadline)

    def wake(self) -> None:
        """Wake every waiter so it re-checks its cancel event."""
        with self._cond:
            self._cond.notify_all()

    @contextlib.contextmanager
    def waiting(self, deadline: float) -> Iterator[None]:
        """Count a waiter that blocks elsewhere (an asyncio task) until ``deadline``.

        ``sdk.aio`` wraps its clock waits in this, so :meth:`wait_blocked`,
        :attr:`blocked` and :meth:`next_deadline` see tasks as they see threads.
        """
        with self._cond:
            self._waiting.append(deadline)
            self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._waiting.remove(deadline)

    def wait_blocked(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` threads are blocked in :meth:`wait_until`.

        Lets a test advance the clock only once the code under test is
        actually waiting on it, instead of sleeping and hoping.

        Args:
            count: how many waiters to wait for.
            timeout: a bound in real seconds.

        Returns:
            ``True`` once that many are waiting, ``False`` on timeout.
        """
        with self._cond:
            return self._cond.wait_for(lambda: len(self._waiting) >= count, timeout)

    async def wait_blocked_async(self, count: int = 1, timeout: float = 5.0) -> bool:
        """:meth:`wait_blocked` for asyncio tests: yields to the loop while it waits.

        Tasks block through ``sdk.aio`` waits on this clock's loop, so the
        blocking :meth:`wait_blocked` would stop them from ever getting there.
        """
        end = _time.monotonic() + timeout
        while self.blocked < count:
            if _time.monotonic() >= end:
                return False
            await asyncio.sleep(0.001)  # let the tasks run up to their waits
        return True

    @property
    def blocked(self) -> int:
        """How many threads are blocked in :meth:`wait_until` right now."""
        with self._cond:
            return len(self._waiting)

    def next_deadline(self) -> float | None:
        """The earliest deadline a blocked thread waits for; ``None`` if none waits.

        ``clock.advance(clock.next_deadline() - clock.monotonic())`` releases
        exactly the next waiter.
        """
        with self._cond:
            return min(self._waiting, default=None)

    def add_listener(self, listener: Callable[[float], None]) -> None:
        """Call ``listener(new_unix_time)`` after every move, outside the lock."""
        with self._cond:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[float], None]) -> None:
        """Stop calling ``listener``.

        Raises:
            ValueError: it was not added.
        """
        with self._cond:
            self._listeners.remove(listener)

    def _notify(self, now: float) -> None:
        with self._cond:
            listeners = list(self._listeners)
        # Every listener runs even if one fails, so one broken waiter cannot
        # starve the others; the first failure is then re-raised to the test.
        error: BaseException | None = None
        for listener in listeners:
            try:
                listener(now)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    def __repr__(self) -> str:
        with self._cond:
            return f"ManualClock(time={self._time:.3f}, monotonic={self._monotonic:.3f})"
