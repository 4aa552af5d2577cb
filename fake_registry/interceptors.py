"""Server interceptors: undecodable requests, then token enforcement.

``MalformedRequestInterceptor`` answers a request whose bytes do not parse
with INTERNAL, as grpc-go does, instead of grpcio's UNKNOWN.

Exempt methods are matched on the full path, exactly or as a suffix (CONTRACT
2.5). Streams are checked once, when they open; a failed check ends the call
with UNAUTHENTICATED before any response. Unknown methods are left to grpc
(UNIMPLEMENTED), as grpc-go answers them before any interceptor runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from grpc import aio

from fake_registry.clock import Clock
from fake_registry.errors import FakeRegistryError
from fake_registry.metadata import lenient_token
from fake_registry.state.world import World

__all__ = ["DEFAULT_EXEMPT_METHODS", "AuthInterceptor", "MalformedRequestInterceptor"]

#: Methods callable without a token. The fake registers the health service,
#: which the real server does not (there, Check answers UNIMPLEMENTED).
DEFAULT_EXEMPT_METHODS: tuple[str, ...] = (
    "/xiaozhizhang.user.v1.ClientAuthService/AuthenticateClient",
    "grpc.health.v1.Health/Check",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)

Context = aio.ServicerContext[Any, Any]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = "Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]"


def _rejecting_handler(handler: Handler, message: str) -> Handler:
    """A handler of the same shape as ``handler`` that aborts with UNAUTHENTICATED."""
    code = grpc.StatusCode.UNAUTHENTICATED
    deserializer = handler.request_deserializer
    serializer = handler.response_serializer

    if handler.response_streaming:

        async def abort_stream(_request: Any, context: Context) -> AsyncIterator[Any]:
            await context.abort(code, message)
            yield None  # type: ignore[unreachable]  # makes this an async generator

        if handler.request_streaming:
            return grpc.stream_stream_rpc_method_handler(
                abort_stream, request_deserializer=deserializer, response_serializer=serializer
            )
        return grpc.unary_stream_rpc_method_handler(
            abort_stream, request_deserializer=deserializer, response_serializer=serializer
        )

    async def abort_unary(_request: Any, context: Context) -> Any:
        await context.abort(code, message)

    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(
            abort_unary, request_deserializer=deserializer, response_serializer=serializer
        )
    return grpc.unary_unary_rpc_method_handler(
        abort_unary, request_deserializer=deserializer, response_serializer=serializer
    )


class AuthInterceptor(aio.ServerInterceptor):
    """Rejects protected calls whose token does not verify."""

    def __init__(
        self, world: World, clock: Clock, exempt: tuple[str, ...] = DEFAULT_EXEMPT_METHODS
    ) -> None:
        self._world = world
        self._clock = clock
        self.exempt = exempt
        self._exempt_cache: dict[str, bool] = {}

    def is_exempt(self, method: str) -> bool:
        cached = self._exempt_cache.get(method)
        if cached is None:
            cached = any(method == e or method.endswith(e) for e in self.exempt)
            self._exempt_cache[method] = cached
        return cached

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or not self._world.auth_enabled:
            return handler
        if self.is_exempt(handler_call_details.method):
            return handler
        token = lenient_token(handler_call_details.invocation_metadata)
        try:
            with self._world.lock:
                self._world.auth.verify(self._clock.time(), token)
        except FakeRegistryError as exc:
            return _rejecting_handler(handler, exc.message)
        return handler


class _Malformed:
    """Stands in for a request whose bytes did not parse."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


_MALFORMED_MESSAGE = "grpc: error unmarshalling request"


def _harden(handler: Handler) -> Handler:
    """Wrap ``handler`` so undecodable requests end the call with INTERNAL."""
    deserializer = handler.request_deserializer
    if deserializer is None:
        return handler

    def safe_deserializer(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # any parse failure, whatever the message type
            return _Malformed(exc)

    async def checked_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        async for request in requests:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
            yield request

    kind = (handler.request_streaming, handler.response_streaming)
    behavior: Any
    if kind == (False, False):
        inner_uu: Any = handler.unary_unary

        async def behavior(request: Any, context: Context) -> Any:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
            return await inner_uu(request, context)

        factory = grpc.unary_unary_rpc_method_handler
    elif kind == (False, True):
        inner_us: Any = handler.unary_stream

        async def behavior(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, _Malformed):
                await context.abort(grpc.StatusCode.INTERNAL, _MALFORMED_MESSAGE)
            async for item in inner_us(request, context):
                yield item

        factory = grpc.unary_stream_rpc_method_handler
    elif kind == (True, False):
        inner_su: Any = handler.stream_unary

        async def behavior(requests: AsyncIterator[Any], context: Context) -> Any:
            return await inner_su(checked_stream(requests, context), context)

        factory = grpc.stream_unary_rpc_method_handler
    else:
        inner_ss: Any = handler.stream_stream

        async def behavior(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for item in inner_ss(checked_stream(requests, context), context):
                yield item

        factory = grpc.stream_stream_rpc_method_handler
    return factory(
        behavior,
        request_deserializer=safe_deserializer,
        response_serializer=handler.response_serializer,
    )


class MalformedRequestInterceptor(aio.ServerInterceptor):
    """Outermost interceptor: hardens whatever handler the inner ones chose.

    Hardened handlers are cached per method, so the steady state costs one
    dict lookup per call.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._cache.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        hardened = _harden(handler)
        if cached is None:  # per-call handlers (rejections) are not cached
            self._cache[method] = (handler, hardened)
        return hardened
