"""Live streams and the controls that act on them.

Every bidi stream the fake serves is a :class:`LiveStream` while it is open.
A stream learns which instances it carries from the ``instance_key`` of the
messages it receives, so controls can target one instance's heartbeat stream.

Stream controls (:class:`StreamControl`), applied to matching streams' answers:
    end_after   end the stream cleanly (status OK) after N answers
    delay       hold each answer for a while (virtual or real seconds)
    withhold    never send answers; the stream stays open
Killing is immediate: :meth:`StreamRegistry.kill` ends matching streams with a
status while the server keeps running.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from fake_registry.call_record import Call

__all__ = ["LiveStream", "StreamControl", "StreamInfo", "StreamRegistry"]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A snapshot of one open stream."""

    id: int
    method: str
    instance_keys: tuple[str, ...]
    opened_at: float
    frames_in: int
    frames_out: int


@dataclass(eq=False)
class LiveStream:
    """Server-side state of one open stream (lives on the server loop)."""

    id: int
    method: str
    opened_at: float
    loop: asyncio.AbstractEventLoop
    call: Call | None = None
    instance_keys: list[str] = field(default_factory=list)
    frames_in: int = 0
    frames_out: int = 0
    #: Resolved with ``(code, details)`` to kill the stream.
    killed: asyncio.Future[tuple[str, str]] = field(init=False)
    #: Set when the controls are cleared, so a withheld stream re-checks them.
    controls_changed: asyncio.Event = field(init=False)
    #: The task serving the stream, and whether it is waiting for the client's
    #: next message: a kill cancels that wait (cheaper than racing every read).
    task: asyncio.Task[Any] | None = None
    reading: bool = False

    def __post_init__(self) -> None:
        self.killed = self.loop.create_future()
        self.controls_changed = asyncio.Event()

    def saw(self, instance_key: str) -> None:
        if instance_key and instance_key not in self.instance_keys:
            self.instance_keys.append(instance_key)

    def carries(self, instance_key: str | None) -> bool:
        return instance_key is None or instance_key in self.instance_keys

    def info(self) -> StreamInfo:
        return StreamInfo(
            self.id,
            self.method,
            tuple(self.instance_keys),
            self.opened_at,
            self.frames_in,
            self.frames_out,
        )


@dataclass(frozen=True, slots=True)
class StreamControl:
    """A standing rule for the answers of matching streams.

    ``instance_key=None`` matches every stream.
    """

    instance_key: str | None = None
    end_after: int | None = None
    delay: float = 0.0
    delay_virtual: bool = True
    withhold: bool = False

    def describe(self) -> str:
        if self.withhold:
            return "withhold answers"
        if self.end_after is not None:
            return f"end stream after {self.end_after} answer(s)"
        return f"delay answers {self.delay:g}s {'virtual' if self.delay_virtual else 'real'}"


class StreamRegistry:
    """Open streams plus stream controls. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[int, LiveStream] = {}
        self._controls: list[StreamControl] = []
        self._next_id = 1

    def open(
        self, method: str, opened_at: float, loop: asyncio.AbstractEventLoop, call: Call | None
    ) -> LiveStream:
        with self._lock:
            stream = LiveStream(self._next_id, method, opened_at, loop, call)
            self._next_id += 1
            self._streams[stream.id] = stream
        return stream

    def close(self, stream: LiveStream) -> None:
        with self._lock:
            self._streams.pop(stream.id, None)

    def snapshot(self) -> list[StreamInfo]:
        with self._lock:
            return [s.info() for s in self._streams.values()]

    def kill(self, instance_key: str | None, code: str, details: str) -> int:
        """End matching open streams with ``code``; returns how many."""
        with self._lock:
            targets = [s for s in self._streams.values() if s.carries(instance_key)]
        for stream in targets:
            stream.loop.call_soon_threadsafe(_kill, stream, (code, details))
        return len(targets)

    # --- controls ---------------------------------------------------------

    def add_control(self, control: StreamControl) -> None:
        with self._lock:
            self._controls.append(control)

    def clear_controls(self) -> None:
        with self._lock:
            self._controls.clear()
            streams = list(self._streams.values())
        for stream in streams:  # release streams that are withholding answers
            stream.loop.call_soon_threadsafe(stream.controls_changed.set)

    def controls(self) -> list[StreamControl]:
        with self._lock:
            return list(self._controls)

    def controls_for(self, stream: LiveStream) -> list[StreamControl]:
        if not self._controls:
            return []
        with self._lock:
            return [c for c in self._controls if stream.carries(c.instance_key)]

    def reset(self) -> None:
        """Drop controls (open streams are left alone)."""
        self.clear_controls()


def _kill(stream: LiveStream, status: tuple[str, str]) -> None:
    """On the stream's loop: mark it killed, and interrupt a pending read."""
    if stream.killed.done():
        return
    stream.killed.set_result(status)
    if stream.reading and stream.task is not None:
        stream.task.cancel()  # the reader turns this into the kill's status
