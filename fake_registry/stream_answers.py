"""Stage 5's stream side: a handler's answers relayed through the stream controls.

:class:`StreamAnswers` passes each answer a streaming handler yields to the
client, journaled as an ``out`` frame, after the stream controls for it
(delay, withhold) and until one ends the stream (end after N answers). A
killed stream (``kill_streams``) ends with the chosen status at once, also
while the handler waits for the client's next message or an answer is held.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from grpc import aio

from fake_registry.call_record import Call
from fake_registry.clock import Clock
from fake_registry.journal import Journal
from fake_registry.streams import LiveStream, StreamRegistry
from fake_registry.timers import cancel_and_wait, pause

__all__ = ["StreamAnswers"]

Context: TypeAlias = "aio.ServicerContext[Any, Any]"
#: Records an exception that escaped the handler and ends the call with INTERNAL.
FailInternal: TypeAlias = "Callable[[Context, Exception], Awaitable[None]]"


class _EndMarker:
    __slots__ = ()


_END: Any = _EndMarker()


class StreamAnswers:
    """Relays streaming handlers' answers for one fake; see the module doc."""

    def __init__(
        self, clock: Clock, journal: Journal, streams: StreamRegistry, fail_internal: FailInternal
    ) -> None:
        self._clock = clock
        self._journal = journal
        self._streams = streams
        self._fail_internal = fail_internal

    async def relay(
        self,
        answers: AsyncIterator[Any],
        context: Context,
        call: Call | None,
        stream: LiveStream | None = None,
    ) -> AsyncIterator[Any]:
        """Relay the handler's answers through the stream controls and kill switch."""
        iterator = answers.__aiter__()
        try:
            while True:
                item = await self._next_or_killed(iterator, context, stream)
                if item is _END:
                    return
                if stream is not None:
                    await self._hold_answer(stream, context, call)
                if isinstance(item, Message):
                    self._journal.frame(call, "out", item)
                if stream is not None:
                    stream.frames_out += 1  # counted before the client can read it
                yield item
                if stream is not None and self._should_end(stream, call):
                    return
        except (aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:
            await self._fail_internal(context, exc)
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()

    async def _next_or_killed(
        self, iterator: AsyncIterator[Any], context: Context, stream: LiveStream | None
    ) -> Any:
        if stream is None:
            return await anext(iterator, _END)
        await self._check_killed(stream, context)
        stream.reading = True  # from here a kill cancels this task (see streams._kill)
        try:
            return await anext(iterator, _END)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if stream.killed.done() and task is not None:
                task.uncancel()
                await self._check_killed(stream, context)
            raise
        finally:
            stream.reading = False

    async def _race(self, step: asyncio.Future[Any], stream: LiveStream, context: Context) -> None:
        """Wait for ``step``; if the stream is killed first, cancel it and abort."""
        try:
            done, _ = await asyncio.wait({step, stream.killed}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the client went away: unwind the step first
            await cancel_and_wait(step)
            raise
        if step not in done:
            await cancel_and_wait(step)
            await self._check_killed(stream, context)

    async def _check_killed(self, stream: LiveStream, context: Context) -> None:
        if stream.killed.done():
            code, details = stream.killed.result()
            self._journal.fault(stream.call, "kill_streams", f"kill {code}")
            await context.abort(grpc.StatusCode[code], details)

    async def _hold_answer(self, stream: LiveStream, context: Context, call: Call | None) -> None:
        """Apply delay/withhold controls before an answer goes out."""
        for control in self._streams.controls_for(stream):
            if control.withhold:
                self._journal.fault(call, "stream_control", control.describe())
                while control in self._streams.controls_for(stream):  # until cleared
                    stream.controls_changed.clear()
                    changed = asyncio.ensure_future(stream.controls_changed.wait())
                    await self._race(changed, stream, context)
            elif control.delay > 0:
                held = asyncio.ensure_future(
                    pause(self._clock, control.delay, control.delay_virtual)
                )
                self._journal.fault(call, "stream_control", control.describe())
                await self._race(held, stream, context)

    def _should_end(self, stream: LiveStream, call: Call | None) -> bool:
        for control in self._streams.controls_for(stream):
            if control.end_after is not None and stream.frames_out >= control.end_after:
                self._journal.fault(call, "stream_control", control.describe())
                return True
        return False
