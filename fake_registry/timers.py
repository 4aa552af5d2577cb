"""Waiting on the fake's clock from its event loop.

A virtual delay ends when the fake's clock has moved ``seconds`` forward,
whether it moved in real time (system and offset clocks) or by ``advance()``
(manual clocks). Clocks that offer ``add_listener`` wake the waiter the moment
they move; otherwise it re-checks as real time passes. :func:`pause` picks
a virtual or a real wait; :func:`cancel_and_wait` ends a wait that lost a race.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from fake_registry.clock import Clock

__all__ = ["cancel_and_wait", "pause", "sleep_on_clock", "sleep_until_on_clock"]

# Upper bound between re-checks, so a clock without listeners is still noticed.
_RECHECK = 0.5


async def sleep_on_clock(clock: Clock, seconds: float) -> None:
    """Wait until ``clock.monotonic()`` has advanced by ``seconds``."""
    await sleep_until_on_clock(clock, clock.monotonic() + seconds)


async def sleep_until_on_clock(clock: Clock, deadline: float) -> None:
    """Wait until ``clock.monotonic()`` reaches ``deadline``.

    Fixing the deadline before the coroutine first runs lets a caller announce
    the wait (journal it) only once its end is set, so a test that sees the
    announcement and then moves the clock always releases it.
    """
    if deadline <= clock.monotonic():
        return
    loop = asyncio.get_running_loop()
    moved = asyncio.Event()

    def on_move(_now: float) -> None:
        loop.call_soon_threadsafe(moved.set)

    add: Callable[[Callable[[float], None]], Any] | None = getattr(clock, "add_listener", None)
    remove: Callable[[Callable[[float], None]], Any] | None = getattr(
        clock, "remove_listener", None
    )
    if add is not None:
        add(on_move)
    try:
        while (remaining := deadline - clock.monotonic()) > 0:
            moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(moved.wait(), timeout=min(remaining, _RECHECK))
    finally:
        if remove is not None:
            remove(on_move)


def pause(clock: Clock, seconds: float, virtual: bool) -> Coroutine[Any, Any, None]:
    """A wait that starts now: a virtual one's end is fixed on ``clock`` at once."""
    if virtual:
        return sleep_until_on_clock(clock, clock.monotonic() + seconds)
    return asyncio.sleep(seconds)


async def cancel_and_wait(step: asyncio.Future[Any]) -> None:
    """Cancel ``step`` and wait until it has unwound (its generator is closed)."""
    step.cancel()
    with contextlib.suppress(BaseException):
        await step
