"""The call journal: every call, every stream frame, every injected fault.

The server side records each call as a :class:`~fake_registry.call_record.Call`
(with its frames and fault events). Tests read it with :meth:`Journal.calls`,
wait for effects with :meth:`Journal.wait_for` (bounded, in real time) and
assert with :meth:`Journal.assert_called`, whose failure message lists the
near misses.

Reprs and assertion messages never show tokens or secrets: ``authorization``
and ``token`` metadata values, ``client_secret`` and ``access_token`` fields
are redacted (:mod:`fake_registry.redaction`). The real values stay readable
through the attributes, so a test can assert the exact
``authorization: Bearer ...`` form.

:class:`Call`, :class:`Frame`, :class:`FaultEvent`, :data:`FRAMES_PER_CALL`
and :func:`method_matches` live in :mod:`fake_registry.call_record` and are
importable from here too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from google.protobuf.message import Message

from fake_registry.call_record import FRAMES_PER_CALL, Call, FaultEvent, Frame, method_matches
from fake_registry.redaction import (
    SECRET_FIELDS,
    SECRET_METADATA,
    describe_message,
    redact_metadata,
)

__all__ = [
    "FRAMES_PER_CALL",
    "Call",
    "FaultEvent",
    "Frame",
    "Journal",
    "JournalAssertionError",
    "describe_message",
    "method_matches",
    "redact_metadata",
]

#: Bound on kept calls; the oldest are dropped past it (a long standalone run).
DEFAULT_CAPACITY = 100_000


class JournalAssertionError(AssertionError):
    """Raised by :meth:`Journal.assert_called`; the message lists near misses."""


Predicate = Callable[[Call], bool]


class Journal:
    """Thread-safe record of calls. Appended on the server's loop, read anywhere."""

    def __init__(self, virtual_time: Callable[[], float], capacity: int = DEFAULT_CAPACITY) -> None:
        self._virtual_time = virtual_time
        self._capacity = capacity
        self._cond = threading.Condition()
        self._calls: deque[Call] = deque(maxlen=capacity)
        self._events: list[FaultEvent] = []
        self._seq = 0
        #: When False nothing is recorded (the benchmark baseline).
        self.enabled = True

    # --- recording (server side) -------------------------------------------

    def begin(
        self,
        method: str,
        metadata: Iterable[tuple[str, Any]],
        peer: str,
        streaming: bool,
        request: Message | None = None,
    ) -> Call | None:
        if not self.enabled:
            return None
        with self._cond:
            self._seq += 1
            call = Call(
                seq=self._seq,
                method=method,
                metadata=tuple(metadata),
                peer=peer,
                started_at=self._virtual_time(),
                started_real=time.time(),
                streaming=streaming,
            )
            if request is not None:
                call._request_type = type(request)
                call._request_bytes = request.SerializeToString()
            self._calls.append(call)  # the deque drops the oldest past capacity
            self._cond.notify_all()
        return call

    def frame(self, call: Call | None, direction: Literal["in", "out"], message: Message) -> None:
        if call is None:
            return
        raw = (direction, message.SerializeToString(), self._virtual_time(), time.time())
        with self._cond:
            if call._raw_frames is None or call._frame_types is None:
                call._raw_frames = deque(maxlen=FRAMES_PER_CALL)
                call._frame_types = {}
            call._frame_types.setdefault(direction, type(message))
            if len(call._raw_frames) == FRAMES_PER_CALL:
                call.frames_dropped += 1
            call._raw_frames.append(raw)
            self._cond.notify_all()

    def end(
        self, call: Call | None, code: str, details: str = "", response: Message | None = None
    ) -> None:
        if call is None or call.code is not None:
            return
        with self._cond:
            if response is not None:
                call._response_type = type(response)
                call._response_bytes = response.SerializeToString()
            call.details = details
            call.ended_at = self._virtual_time()
            call.ended_real = time.time()
            call.code = code
            self._cond.notify_all()

    def fault(self, call: Call | None, rule: str, action: str) -> FaultEvent:
        event = FaultEvent(
            rule, action, self._virtual_time(), time.time(), None if call is None else call.seq
        )
        with self._cond:
            self._events.append(event)
            if call is not None:
                if call._faults is None:
                    call._faults = []
                call._faults.append(event)
            self._cond.notify_all()
        return event

    def clear(self) -> None:
        """Forget every call and event (numbering restarts at 1)."""
        with self._cond:
            self._calls.clear()
            self._events.clear()
            self._seq = 0

    # --- reading (test side) -----------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Calls so far, oldest first; ``method`` filters as :func:`method_matches`."""
        with self._cond:
            calls = list(self._calls)
        if method is None:
            return calls
        return [c for c in calls if method_matches(method, c.method)]

    def events(self) -> list[FaultEvent]:
        """Every injected fault event, oldest first."""
        with self._cond:
            return list(self._events)

    def wait_for(
        self,
        method_or_predicate: str | Predicate,
        count: int = 1,
        timeout: float = 5.0,
    ) -> list[Call]:
        """Block until ``count`` calls match; return them (oldest first).

        A method name matches *finished* calls to that method (streams count
        once they end); a predicate sees every call, finished or not.

        Raises:
            TimeoutError: fewer than ``count`` matched within ``timeout``
                real seconds; the message lists the calls seen.
        """
        match = self._matcher(method_or_predicate)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if match(c)]
                if len(found) >= count:
                    return found[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    recent = list(self._calls)[-20:]
                    seen = "\n".join(f"  {c!r}" for c in recent) or "  (none)"
                    raise TimeoutError(
                        f"waited {timeout}s for {count} call(s) matching "
                        f"{_label(method_or_predicate)}, got {len(found)}; recent calls:\n{seen}"
                    )
                self._cond.wait(remaining)

    def wait_for_frames(
        self,
        method: str,
        count: int,
        direction: Literal["in", "out"] = "in",
        timeout: float = 5.0,
    ) -> list[Frame]:
        """Block until ``count`` frames in ``direction`` were seen on ``method`` streams."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                calls = [c for c in self._calls if method_matches(method, c.method)]
                seen = sum(c.frame_count(direction) for c in calls)
                if seen >= count:
                    frames = [f for c in calls for f in c.frames if f.direction == direction]
                    return frames[:count]
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"waited {timeout}s for {count} {direction!r} frame(s) on {method}, "
                        f"got {seen}"
                    )
                self._cond.wait(remaining)

    def assert_called(
        self,
        method: str,
        *,
        times: int | None = None,
        code: str | None = None,
        metadata: Mapping[str, str] | None = None,
        request: Mapping[str, Any] | None = None,
    ) -> list[Call]:
        """Assert finished calls to ``method`` match; return the matching ones.

        Args:
            method: see :func:`method_matches`.
            times: exact number of matching calls; ``None`` means at least one.
            code: final status name, e.g. ``"OK"``.
            metadata: header values the call must carry (first value per key).
            request: request fields and their expected values.

        Raises:
            JournalAssertionError: listing every call to ``method`` (the near
                misses) with the reasons each did not match, or every call
                when ``method`` was never called.
        """
        candidates = [c for c in self.calls(method) if c.done]
        matched: list[Call] = []
        misses: list[str] = []
        for call in candidates:
            reasons = _mismatches(call, code, metadata, request)
            if reasons:
                misses.append(f"  {call!r}\n    differs: {'; '.join(reasons)}")
            else:
                matched.append(call)
        ok = len(matched) == times if times is not None else bool(matched)
        if ok:
            return matched
        wanted = f"exactly {times}" if times is not None else "at least 1"
        lines = [f"expected {wanted} call(s) to {method} matching, found {len(matched)}"]
        if misses:
            lines.append("near misses:")
            lines.extend(misses)
        if not candidates:
            others = self.calls()
            lines.append("no finished call to that method; all calls:")
            lines.extend(f"  {c!r}" for c in others[-20:]) if others else lines.append("  (none)")
        raise JournalAssertionError("\n".join(lines))

    @staticmethod
    def _matcher(method_or_predicate: str | Predicate) -> Predicate:
        if callable(method_or_predicate):
            return method_or_predicate
        pattern = method_or_predicate
        return lambda c: c.done and method_matches(pattern, c.method)


def _label(method_or_predicate: str | Predicate) -> str:
    if isinstance(method_or_predicate, str):
        return method_or_predicate
    return getattr(method_or_predicate, "__name__", "predicate")


def _mismatches(
    call: Call,
    code: str | None,
    metadata: Mapping[str, str] | None,
    request: Mapping[str, Any] | None,
) -> list[str]:
    reasons: list[str] = []
    if code is not None and call.code != code:
        reasons.append(f"code {call.code} != {code}")
    for key, expected in (metadata or {}).items():
        actual = call.header(key)
        if actual != expected:
            shown = "<redacted>" if key in SECRET_METADATA else repr(actual)
            reasons.append(f"metadata {key}={shown}")
    for name, expected in (request or {}).items():
        actual = getattr(call.request, name, None) if call.request is not None else None
        if actual != expected:
            secret = name in SECRET_FIELDS  # the expected value is a secret too
            shown, wanted = (
                ("<redacted>", "<redacted>") if secret else (repr(actual), repr(expected))
            )
            reasons.append(f"request.{name}={shown} != {wanted}")
    return reasons
