"""The call pipeline: one server interceptor that every call passes through.

For each call, in this order:
    1. journal   the call is recorded (method, metadata, request, status, frames)
    2. decode    a request whose bytes do not parse ends with INTERNAL, as
                 grpc-go answers it, instead of grpcio's UNKNOWN
    3. faults    the first matching fault rule acts (abort, delay, drop)
    4. auth      protected methods need a valid token (CONTRACT 2.5): streams
                 are checked once, at open; failures are UNAUTHENTICATED
    5. handler   the servicer; stream answers pass the stream controls, and a
                 killed stream ends with the chosen status
An exception that escapes a handler is a bug in the fake: it is recorded in
the error sink and answered with INTERNAL, never UNKNOWN. Unknown methods are
left to grpc (UNIMPLEMENTED), as grpc-go answers them before any interceptor.

Wrapped handlers are built once per method, so a call costs one dict lookup
here plus the work of each stage.

This module holds the pipeline itself (journal, decode check, the handler
call and the journaling of its end); stages 3 and 4 are
:class:`~fake_registry.call_admission.CallAdmission`, the stream side of
stage 5 is :class:`~fake_registry.stream_answers.StreamAnswers`.
:data:`DEFAULT_EXEMPT_METHODS` and :data:`CONTROL_SERVICE_PREFIX` live in
:mod:`fake_registry.call_admission` and are importable from here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeAlias, cast

import grpc
from google.protobuf.message import Message
from grpc import aio

from fake_registry.call_admission import (
    CONTROL_SERVICE_PREFIX,
    DEFAULT_EXEMPT_METHODS,
    CallAdmission,
)
from fake_registry.clock import Clock
from fake_registry.faults import FaultSet
from fake_registry.journal import Call, Journal
from fake_registry.servicers.guard import ErrorSink
from fake_registry.state.world import World
from fake_registry.stream_answers import StreamAnswers
from fake_registry.streams import LiveStream, StreamRegistry

__all__ = ["CONTROL_SERVICE_PREFIX", "DEFAULT_EXEMPT_METHODS", "CallPipeline", "current_call"]

log = logging.getLogger("fake_registry")

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"
Context: TypeAlias = "aio.ServicerContext[Any, Any]"
Metadata: TypeAlias = "Sequence[tuple[str, Any]]"

#: The journal entry of the call being served (None when journaling is off).
current_call: contextvars.ContextVar[Call | None] = contextvars.ContextVar(
    "fake_registry_current_call", default=None
)

_MALFORMED_MESSAGE = "grpc: error unmarshalling request"
#: A call cancelled this close to its deadline (seconds) ended by the deadline:
#: the client's cancel can reach the server just before the server's own timer.
_DEADLINE_SLACK = 0.05


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


class CallPipeline(aio.ServerInterceptor):
    """Journal, decode check, faults and auth for every call; see the module doc."""

    def __init__(
        self,
        world: World,
        clock: Clock,
        journal: Journal,
        faults: FaultSet,
        streams: StreamRegistry,
        errors: ErrorSink,
        exempt: Sequence[str] = DEFAULT_EXEMPT_METHODS,
        signing_key: str | None = None,
    ) -> None:
        self._clock = clock
        self._journal = journal
        self._streams = streams
        self._errors = errors
        self._admission = CallAdmission(
            faults, journal, world, clock, exempt=exempt, signing_key=signing_key
        )
        self._answers = StreamAnswers(clock, journal, streams, self._fail_internal)
        self._cache: dict[str, tuple[Handler, Handler]] = {}

    @property
    def exempt(self) -> tuple[str, ...]:
        """Method paths (or path suffixes) that need no token."""
        return self._admission.exempt

    @exempt.setter
    def exempt(self, methods: Sequence[str]) -> None:
        self._admission.exempt = methods

    def is_exempt(self, method: str) -> bool:
        return self._admission.is_exempt(method)

    async def release_held_calls(self) -> None:
        """End every call held by a delay or drop fault (run on the server loop)."""
        await self._admission.release_held_calls()

    def rearm(self) -> None:
        """Forget a previous stop, before the server starts (on a new loop)."""
        self._admission.rearm()

    def wrap(self, method: str, handler: Handler) -> Handler:
        """The pipeline around ``handler`` for calls to ``method`` (built once per method).

        The server registers wrapped handlers directly (see
        :class:`~fake_registry.server.ServerThread`), which costs far less per
        call than grpc.aio's interceptor chain.
        """
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._cache[method] = (handler, wrapped)
        return wrapped

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        """The same pipeline as a grpc.aio interceptor, for servers built elsewhere."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        return self.wrap(handler_call_details.method, handler)

    # --- stages -------------------------------------------------------------

    def _begin(
        self,
        method: str,
        metadata: Metadata,
        peer: str,
        streaming: bool,
        request: Message | None = None,
    ) -> Call | None:
        if method.startswith(CONTROL_SERVICE_PREFIX):
            return None  # the control plane is not part of what a test observes
        return self._journal.begin(method, metadata, peer, streaming, request)

    def _journaling(
        self, context: Context, call: Call | None, stream: LiveStream | None = None
    ) -> Context:
        """``context``, with aborts journaled (and ``stream`` unlisted) before
        their status goes out."""
        if call is None and stream is None:
            return context
        journaling: Any = _JournalingContext(context, call, self._journal, self._streams, stream)
        return cast("Context", journaling)

    async def _fail_internal(self, context: Context, exc: Exception) -> None:
        self._errors.record(exc)
        log.error("unexpected error inside the fake", exc_info=exc)
        await context.abort(
            grpc.StatusCode.INTERNAL, f"internal error in the fake: {type(exc).__name__}"
        )

    def _finish(self, call: Call | None, context: Context, exc: BaseException | None) -> None:
        if call is None:
            return
        if exc is None:
            self._journal.end(call, "OK")
        elif isinstance(exc, aio.AbortError):
            code = context.code()
            self._journal.end(call, code.name if code else "UNKNOWN", context.details() or "")
        elif isinstance(exc, asyncio.CancelledError):
            # The client's deadline passing cancels the call here too; tell it apart.
            remaining = context.time_remaining()
            past_deadline = remaining is not None and remaining <= _DEADLINE_SLACK
            self._journal.end(call, "DEADLINE_EXCEEDED" if past_deadline else "CANCELLED")

    # --- wrapping -------------------------------------------------------------

    def _wrap(self, method: str, handler: Handler) -> Handler:
        deserializer = handler.request_deserializer

        def decode(data: bytes) -> Any:
            try:
                return deserializer(data) if deserializer is not None else data
            except Exception as exc:  # any parse failure, whatever the message type
                return _Malformed(exc)

        kind = (handler.request_streaming, handler.response_streaming)
        behavior: Any
        if kind == (False, False):
            behavior = self._unary_response(method, handler.unary_unary, False)
            factory: Any = grpc.unary_unary_rpc_method_handler
        elif kind == (False, True):
            behavior = self._unary_stream(method, handler.unary_stream)
            factory = grpc.unary_stream_rpc_method_handler
        elif kind == (True, False):
            behavior = self._unary_response(method, handler.stream_unary, True)
            factory = grpc.stream_unary_rpc_method_handler
        else:
            behavior = self._stream_stream(method, handler.stream_stream)
            factory = grpc.stream_stream_rpc_method_handler
        wrapped: Handler = factory(
            behavior, request_deserializer=decode, response_serializer=handler.response_serializer
        )
        return wrapped

    def _unary_response(self, method: str, inner: Any, client_streaming: bool) -> Any:
        """Behaviour for unary-unary and stream-unary methods (one response)."""

        async def behavior(request: Any, context: Context) -> Any:
            metadata: Metadata = tuple(context.invocation_metadata() or ())
            malformed = not client_streaming and isinstance(request, _Malformed)
            journaled = None if client_streaming or malformed else request
            call = self._begin(method, metadata, context.peer(), client_streaming, journaled)
            reset = current_call.set(call)
            context = self._journaling(context, call)
            try:
                if malformed:
                    await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
                await self._admission.admit(method, metadata, context, call)
                if client_streaming:
                    request = self._incoming(request, context, call, None)
                try:
                    response = await inner(request, context)
                except (aio.AbortError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    await self._fail_internal(context, exc)
            except BaseException as exc:
                self._finish(call, context, exc)
                raise
            finally:
                _reset_current_call(reset)
            if call is not None:
                self._journal.end(call, "OK", response=response)
            return response

        return behavior

    def _unary_stream(self, method: str, inner: Any) -> Any:
        async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
            metadata: Metadata = tuple(context.invocation_metadata() or ())
            malformed = isinstance(request, _Malformed)
            call = self._begin(
                method, metadata, context.peer(), True, None if malformed else request
            )
            reset = current_call.set(call)
            context = self._journaling(context, call)
            try:
                if malformed:
                    await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
                await self._admission.admit(method, metadata, context, call)
                async for item in self._answers.relay(inner(request, context), context, call):
                    yield item
            except BaseException as exc:
                self._finish(call, context, exc)
                raise
            finally:
                _reset_current_call(reset)
            self._finish(call, context, None)

        return behavior

    def _stream_stream(self, method: str, inner: Any) -> Any:
        async def behavior(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            metadata: Metadata = tuple(context.invocation_metadata() or ())
            call = self._begin(method, metadata, context.peer(), True)
            reset = current_call.set(call)
            stream = self._streams.open(
                method, self._clock.time(), asyncio.get_running_loop(), call
            )
            stream.task = asyncio.current_task()
            context = self._journaling(context, call, stream)
            try:
                await self._admission.admit(method, metadata, context, call)
                answers = inner(self._incoming(requests, context, call, stream), context)
                async for item in self._answers.relay(answers, context, call, stream):
                    yield item
            except BaseException as exc:
                self._finish(call, context, exc)
                raise
            finally:
                self._streams.close(stream)
                _reset_current_call(reset)
            self._finish(call, context, None)

        return behavior

    async def _incoming(
        self,
        requests: AsyncIterator[Any],
        context: Context,
        call: Call | None,
        stream: LiveStream | None,
    ) -> AsyncIterator[Any]:
        """The client's messages, journaled; a malformed one ends the call."""
        async for request in requests:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
            if stream is not None:
                stream.frames_in += 1
                stream.saw(getattr(request, "instance_key", "") or "")
            if isinstance(request, Message):
                self._journal.frame(call, "in", request)
            yield request


class _JournalingContext:
    """A servicer context whose ``abort`` journals the call's end first.

    grpc sends an abort's status before ``abort`` raises, so without this a
    client could see the status while the journal still shows the call in
    flight (and ``assert_called`` right after the RPC would miss it), or while
    ``streams()`` still lists a stream it just saw killed.
    """

    __slots__ = ("_call", "_context", "_journal", "_stream", "_streams")

    def __init__(
        self,
        context: Context,
        call: Call | None,
        journal: Journal,
        streams: StreamRegistry,
        stream: LiveStream | None,
    ) -> None:
        self._context = context
        self._call = call
        self._journal = journal
        self._streams = streams
        self._stream = stream

    async def abort(
        self, code: grpc.StatusCode, details: str = "", *args: Any, **kwargs: Any
    ) -> None:
        self._journal.end(self._call, code.name, details)
        if self._stream is not None:
            self._streams.close(self._stream)
        await self._context.abort(code, details, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def _reset_current_call(token: contextvars.Token[Call | None]) -> None:
    # A handler closed during shutdown runs its finally block in another context.
    with contextlib.suppress(ValueError):
        current_call.reset(token)
