"""The call journal: every call, every stream frame, every injected fault.

Each call is a :class:`Call` with its method, metadata, request and response
(or final status), virtual and real timestamps, its stream frames and the
fault events that touched it. Tests read it with :meth:`Journal.calls`, wait
for effects with :meth:`Journal.wait_for` (bounded, in real time) and assert
with :meth:`Journal.assert_called`, whose failure message lists the near
misses.

Reprs and assertion messages never show tokens or secrets: ``authorization``
and ``token`` metadata values, ``client_secret`` and ``access_token`` fields
are redacted. The real values stay readable through the attributes, so a test
can assert the exact ``authorization: Bearer ...`` form.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf.message import Message
from google.protobuf.text_format import MessageToString

__all__ = [
    "FRAMES_PER_CALL",
    "Call",
    "FaultEvent",
    "Frame",
    "Journal",
    "JournalAssertionError",
    "method_matches",
]

_SECRET_METADATA = frozenset({"authorization", "token"})
_SECRET_FIELDS = ("client_secret", "access_token")
#: Bound on kept calls; the oldest are dropped past it (a long standalone run).
DEFAULT_CAPACITY = 100_000
#: Bound on kept frames per call: a stream open for days keeps its latest ones.
FRAMES_PER_CALL = 10_000


def method_matches(pattern: str, method: str) -> bool:
    """Whether ``method`` (a full path) is named by ``pattern``.

    ``pattern`` is a full path (``/pkg.Service/Method``), ``Service/Method``,
    ``pkg.Service/Method``, a bare method name (``ListServices``) or ``*``.
    """
    if pattern in ("*", method):
        return True
    if not method.endswith(pattern):
        return False
    boundary = method[-len(pattern) - 1]
    return boundary in "/."


def redact_metadata(metadata: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """Metadata with token-bearing values replaced by ``<redacted>``."""
    return tuple(
        (key, "<redacted>" if key in _SECRET_METADATA else value) for key, value in metadata
    )


def describe_message(message: Message | None) -> str:
    """A one-line text form of ``message`` with secret fields redacted."""
    if message is None:
        return "-"
    present = {f.name for f, _ in message.ListFields()}
    hidden = [name for name in _SECRET_FIELDS if name in present]
    if hidden:
        copy = type(message)()
        copy.CopyFrom(message)
        for name in hidden:
            setattr(copy, name, "<redacted>")
        message = copy
    return "{" + MessageToString(message, as_one_line=True) + "}"


@dataclass(frozen=True, slots=True)
class Frame:
    """One message on a stream. ``direction`` is ``"in"`` (from the client) or ``"out"``."""

    direction: Literal["in", "out"]
    message: Message
    virtual_time: float
    real_time: float

    def __repr__(self) -> str:
        return f"Frame({self.direction} {describe_message(self.message)} @{self.virtual_time:.3f})"


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """An injected fault, as it touched a call (or a stream, for stream controls)."""

    rule: str
    action: str
    virtual_time: float
    real_time: float
    call_seq: int | None = None

    def __repr__(self) -> str:
        return f"FaultEvent({self.rule}: {self.action} on call #{self.call_seq})"


@dataclass(slots=True, eq=False)
class Call:
    """One RPC as the fake saw it. Mutable while in flight, then final.

    Attributes:
        seq: order of arrival, from 1.
        method: full method path, e.g. ``/xiaozhizhang.registry.v1.RegistryService/ListServices``.
        metadata: invocation metadata as received (secrets included: redacted only in reprs).
        request: the request message of a unary call; ``None`` for client streams
            (their messages are ``frames`` with direction ``"in"``) or an
            undecodable request.
        response: the response of a successful unary call, else ``None``.
        code: the final status code name (``"OK"``, ``"UNAVAILABLE"``...);
            ``None`` while the call is in flight.
    """

    seq: int
    method: str
    metadata: tuple[tuple[str, Any], ...]
    peer: str
    started_at: float
    started_real: float
    streaming: bool
    code: str | None = None
    details: str = ""
    ended_at: float | None = None
    ended_real: float | None = None
    #: Frames beyond :data:`FRAMES_PER_CALL` that were dropped, oldest first.
    frames_dropped: int = 0
    # Messages are kept serialized (decoded when read) and containers are made
    # only when needed: a journaled call then holds almost nothing the garbage
    # collector tracks, so a full journal costs no GC pauses. Frames are
    # (direction, bytes, virtual, real) tuples of immutable values.
    # Type and bytes in separate slots: a tuple holding a type stays GC-tracked.
    _request_type: type[Message] | None = field(default=None, repr=False)
    _request_bytes: bytes = field(default=b"", repr=False)
    _response_type: type[Message] | None = field(default=None, repr=False)
    _response_bytes: bytes = field(default=b"", repr=False)
    _faults: list[FaultEvent] | None = field(default=None, repr=False)
    _raw_frames: deque[tuple[str, bytes, float, float]] | None = field(default=None, repr=False)
    _frame_types: dict[str, type[Message]] | None = field(default=None, repr=False)

    @property
    def request(self) -> Message | None:
        kind = self._request_type
        return None if kind is None else kind.FromString(self._request_bytes)

    @property
    def response(self) -> Message | None:
        kind = self._response_type
        return None if kind is None else kind.FromString(self._response_bytes)

    @property
    def faults(self) -> list[FaultEvent]:
        """The injected faults that touched this call, oldest first."""
        return list(self._faults or ())

    @property
    def frames(self) -> list[Frame]:
        """The stream's messages in arrival order (the latest :data:`FRAMES_PER_CALL`)."""
        types = self._frame_types or {}
        return [
            Frame(direction, types[direction].FromString(data), virtual, real)  # type: ignore[arg-type]
            for direction, data, virtual, real in list(self._raw_frames or ())
        ]

    def frame_count(self, direction: str | None = None) -> int:
        """How many frames are kept (in one direction, or both), without decoding them."""
        raw = list(self._raw_frames or ())
        if direction is None:
            return len(raw)
        return sum(1 for frame in raw if frame[0] == direction)

    @property
    def done(self) -> bool:
        return self.code is not None

    @property
    def name(self) -> str:
        """The bare method name, e.g. ``ListServices``."""
        return self.method.rsplit("/", 1)[-1]

    def header(self, key: str) -> Any:
        """The first metadata value for ``key``, or ``None``."""
        for name, value in self.metadata:
            if name == key:
                return value
        return None

    def frames_in(self) -> list[Message]:
        return [f.message for f in self.frames if f.direction == "in"]

    def frames_out(self) -> list[Message]:
        return [f.message for f in self.frames if f.direction == "out"]

    def __repr__(self) -> str:
        status = self.code or "in flight"
        parts = [f"#{self.seq} {self.name} -> {status}"]
        if self.details and self.code != "OK":
            parts.append(repr(self.details))
        parts.append(f"request={describe_message(self.request)}")
        if self.streaming:
            parts.append(f"frames={self.frame_count()}")
        parts.append(f"metadata={dict(redact_metadata(self.metadata))}")
        if self.faults:
            parts.append(f"faults={[e.action for e in self.faults]}")
        return "Call(" + " ".join(parts) + ")"


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
            shown = "<redacted>" if key in _SECRET_METADATA else repr(actual)
            reasons.append(f"metadata {key}={shown}")
    for name, expected in (request or {}).items():
        actual = getattr(call.request, name, None) if call.request is not None else None
        if actual != expected:
            secret = name in _SECRET_FIELDS  # the expected value is a secret too
            shown, wanted = (
                ("<redacted>", "<redacted>") if secret else (repr(actual), repr(expected))
            )
            reasons.append(f"request.{name}={shown} != {wanted}")
    return reasons
