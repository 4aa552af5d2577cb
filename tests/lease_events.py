"""``Recorder``: collects a registration's lease events (``on_event``) and waits for them.

``on_event`` runs on the registration's thread (sync) or its event loop's thread (async);
the test thread waits on a condition, with a bound.
"""

from __future__ import annotations

import threading

from sdk.registration import LeaseEvent, Reason

__all__ = ["Recorder"]


class Recorder:
    """Collects events from ``on_event`` and waits for them (bounded)."""

    def __init__(self) -> None:
        self.events: list[LeaseEvent] = []
        self._cond = threading.Condition()

    def __call__(self, event: LeaseEvent) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def of(self, reason: Reason) -> list[LeaseEvent]:
        with self._cond:
            return [e for e in self.events if e.reason is reason]

    def wait_for(self, reason: Reason, count: int = 1, timeout: float = 5.0) -> list[LeaseEvent]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(reason)) >= count, timeout)
        assert ok, f"waited for {count} {reason} event(s); got {self.events!r}"
        return self.of(reason)
