"""What the journal records about one RPC: a :class:`Call`, its frames and fault events.

A :class:`Call` holds the method, metadata, request and response (or final
status), virtual and real timestamps, its stream frames and the fault events
that touched it; :func:`method_matches` says which calls a method pattern
names (the journal's filters and the fault rules use it). Reprs never show
tokens or secrets (:mod:`fake_registry.redaction`); the attributes keep the
real values.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from google.protobuf.message import Message

from fake_registry.redaction import describe_message, redact_metadata

__all__ = ["FRAMES_PER_CALL", "Call", "FaultEvent", "Frame", "method_matches"]

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
