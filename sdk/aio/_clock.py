"""Waiting on the client's clock from asyncio (the async twin of ``Clock.wait_until``).

Rules:
    ``SystemClock``                  -> an asyncio timer (the loop's clock is the monotonic one)
    a clock with listeners           -> a task waits for the clock to move (``add_listener``
    (the manual clocks)                 wakes it through ``call_soon_threadsafe``) or for the
                                        deadline in real seconds, whichever comes first, and
                                        re-checks ``monotonic()``; ``ManualClock.waiting``
                                        counts it for ``wait_blocked`` / ``next_deadline``
    any other :class:`Clock`         -> its blocking ``wait_until`` in a worker thread,
                                        cancelled through its ``cancel`` event
    ``wake`` set                     -> the wait ends early with ``False``

A deadline already reached returns ``True`` at once, even when ``wake`` is set (the same
rule as ``Clock.wait_until``). Cancelling the waiting task cancels only the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable
from typing import Any

from sdk.clock import Clock, SystemClock

__all__ = ["sleep_until"]


async def sleep_until(clock: Clock, deadline: float, wake: asyncio.Event | None = None) -> bool:
    """Sleep until ``clock.monotonic() >= deadline``; ``False`` if ``wake`` was set first."""
    if math.isnan(deadline):
        raise ValueError("deadline must be a number, not NaN")
    if clock.monotonic() >= deadline:
        return True
    if isinstance(clock, SystemClock):
        return await _sleep_real(clock, deadline, wake)
    add_listener = getattr(clock, "add_listener", None)
    remove_listener = getattr(clock, "remove_listener", None)
    if callable(add_listener) and callable(remove_listener):
        waiting = getattr(clock, "waiting", None)
        scope = waiting(deadline) if callable(waiting) else contextlib.nullcontext()
        with scope:
            return await _sleep_listening(clock, deadline, wake, add_listener, remove_listener)
    return await _sleep_in_thread(clock, deadline, wake)


async def _first(events: list[asyncio.Event], timeout: float) -> None:
    """Return when one of ``events`` is set, or after ``timeout`` real seconds.

    ``asyncio.wait`` rather than ``wait_for``: on Python 3.11, ``wait_for`` can swallow a
    cancellation of the waiting task that lands in the step its inner wait ends.
    """
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(
            waits,
            timeout=None if not math.isfinite(timeout) else max(timeout, 0.0),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        for waiter in waits:
            waiter.cancel()


async def _sleep_real(clock: Clock, deadline: float, wake: asyncio.Event | None) -> bool:
    while True:
        left = deadline - clock.monotonic()
        if left <= 0:
            return True
        if wake is None:
            await asyncio.sleep(left if math.isfinite(left) else threading.TIMEOUT_MAX)
            continue
        if wake.is_set():
            return False
        await _first([wake], left)


async def _sleep_listening(
    clock: Clock,
    deadline: float,
    wake: asyncio.Event | None,
    add_listener: Callable[[Callable[[float], None]], None],
    remove_listener: Callable[[Callable[[float], None]], None],
) -> bool:
    loop = asyncio.get_running_loop()
    moved = asyncio.Event()

    def listener(_now: float) -> None:
        # Called on the thread that moved the clock; a closed loop has no waiter left.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(moved.set)

    add_listener(listener)
    try:
        while True:
            left = deadline - clock.monotonic()
            if left <= 0:
                return True
            if wake is not None and wake.is_set():
                return False
            moved.clear()
            # A clock that also ticks in real time (OffsetClock) reaches the deadline
            # without a move: bound each wait by the time left.
            await _first([moved] if wake is None else [moved, wake], left)
    finally:
        with contextlib.suppress(ValueError):
            remove_listener(listener)


async def _sleep_in_thread(clock: Clock, deadline: float, wake: asyncio.Event | None) -> bool:
    cancel = threading.Event()
    worker = asyncio.ensure_future(asyncio.to_thread(clock.wait_until, deadline, cancel))
    waits: list[asyncio.Future[Any]] = [worker]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not worker.done():
            cancel.set()
            clock.wake()
        for waiter in waits[1:]:
            waiter.cancel()
    reached: bool = await worker
    return reached
