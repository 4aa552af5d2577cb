"""``grpc.aio`` channels to the registry: the transport, failover, and the token channel.

The asyncio twin of ``sdk._grpc.channel`` and ``sdk._grpc.interceptors``; the address plan,
TLS, keepalive options and failover order are shared with the sync SDK, only the calls are
awaited.

Rules of the business channel (:class:`TokenChannel`, what ``AsyncClient.channel`` is):
    no deadline on the call      -> ``default_timeout`` (unary calls and one-way streams);
                                    bidi streams (HeartbeatStream) get none
    token                        -> ``authorization: Bearer <token>`` in a copy of the
                                    call's metadata
    unary call, UNAUTHENTICATED  -> drop the token that call carried (by generation), send
                                    the call again ONCE with a fresh token, same deadline
    streams                      -> the token at open; when the cached token is fresh the
                                    real ``grpc.aio`` call is returned, otherwise a call that
                                    obtains the token when first used (awaited, iterated,
                                    written to)

grpc.aio client interceptors are not used: they cost several times this per call, and
the unary path here is one coroutine around the real call. A unary call through these
channels is a coroutine: ``await stub.Method(request)`` works; the ``UnaryUnaryCall``
extras (``initial_metadata()``, ``code()`` before completion) are not offered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc
import grpc.aio

from sdk._grpc.channel import TargetPlan, channel_options, plan_target
from sdk._grpc.failover import FailoverOrder
from sdk._grpc.interceptors import with_token
from sdk.aio._pending_call import PendingCall
from sdk.config import Config
from sdk.errors import ClientClosed

__all__ = [
    "AioFailoverChannel",
    "AioTransport",
    "AsyncTokenSource",
    "TokenChannel",
    "closed_under",
    "open_channel",
    "open_transport",
]

_UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def closed_under(method: str | None) -> ClientClosed | None:
    """The error for a call that ended with a ``CancelledError`` this task did not ask for.

    Closing a ``grpc.aio`` channel cancels the calls on it, and their awaits raise
    ``CancelledError`` in tasks nobody cancelled. The SDK's own methods raise
    :class:`~sdk.errors.ClientClosed` then (as the sync SDK raises a status error); a
    ``CancelledError`` of the task itself (``Task.cancelling()``) is never converted.
    """
    task = asyncio.current_task()
    if task is None or task.cancelling():
        return None
    return ClientClosed("the client was closed during the call", method=method)


class AsyncTokenSource(Protocol):
    """Where the token channel gets tokens: ``sdk.aio.AsyncAuth``."""

    def fresh(self) -> tuple[str, int] | None:
        """The cached token and its generation if it needs no refresh; no IO."""
        ...

    async def acquire(self, timeout: float | None = None) -> tuple[str, int]:
        """A token to send now and its generation; raises a ``RegistryError`` on failure."""
        ...

    def on_unauthenticated(self, generation: int) -> None:
        """A call that carried the token of ``generation`` got UNAUTHENTICATED."""
        ...


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: Sequence[Any]
) -> grpc.aio.Channel:
    """One ``grpc.aio`` channel: plaintext when ``credentials`` is ``None``."""
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=list(options))
    return grpc.aio.secure_channel(target, credentials, options=list(options))


class AioTransport:
    """The registry connection of one async client: a channel (plain or failover)."""

    __slots__ = ("_channel", "_closed", "plan")

    def __init__(self, channel: grpc.aio.Channel, plan: TargetPlan) -> None:
        self._channel = channel
        self.plan = plan
        self._closed = False

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Close every channel (calls in flight end with CANCELLED); idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._channel.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"AioTransport(targets={list(self.plan.targets)!r}, {state})"


def open_transport(config: Config) -> AioTransport:
    """Open the ``grpc.aio`` channels for ``config``; call inside the loop that uses them.

    Raises:
        ConfigError: a TLS file cannot be read.
    """
    plan = plan_target(config.addresses)
    credentials, options = channel_options(config, plan)
    channels = [open_channel(target, credentials, options) for target in plan.targets]
    if len(channels) == 1:
        return AioTransport(channels[0], plan)
    return AioTransport(AioFailoverChannel(channels, plan.targets), plan)


class _ChannelBase(grpc.aio.Channel):
    """The parts of ``grpc.aio.Channel`` a wrapper forwards to its first channel."""

    def __init__(self, channels: Sequence[grpc.aio.Channel]) -> None:
        self._channels = tuple(channels)

    async def __aenter__(self) -> _ChannelBase:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self, grace: float | None = None) -> None:
        for channel in self._channels:
            await channel.close(grace)

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channels[0].get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        await self._channels[0].wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:
        await self._channels[0].channel_ready()


def _multicallables(
    channels: Sequence[grpc.aio.Channel], kind: str, method: str, *args: Any, **kwargs: Any
) -> list[Any]:
    return [getattr(channel, kind)(method, *args, **kwargs) for channel in channels]


class AioFailoverChannel(_ChannelBase):
    """Several ``grpc.aio`` channels, one per address, used one at a time.

    The same order as the sync ``FailoverChannel``: unary calls that fail with UNAVAILABLE
    move on to the next address within the call's deadline; streams go to the current one.
    """

    def __init__(self, channels: Sequence[grpc.aio.Channel], targets: Sequence[str] = ()) -> None:
        super().__init__(channels)
        self._targets = tuple(targets)
        self._order = FailoverOrder(len(self._channels))

    @property
    def current(self) -> int:
        return self._order.current

    async def call_with_failover(
        self, attempt: Callable[[int, float | None], Awaitable[Any]], timeout: float | None
    ) -> Any:
        """Await ``attempt(channel_index, timeout)`` on each channel in turn until one works."""
        order = self._order
        deadline = None if timeout is None else time.monotonic() + timeout
        for tried, index in enumerate(order.attempts()):
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                result = await attempt(index, remaining)
            except grpc.RpcError as exc:
                if not order.may_retry(exc, tried, deadline, time.monotonic()):
                    raise
                order.moved_past(index)
                continue
            order.settled_on(index)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        callables = _multicallables(self._channels, "unary_unary", method, *args, **kwargs)

        def call(request: Any, *, timeout: float | None = None, **options: Any) -> Any:
            def attempt(index: int, remaining: float | None) -> Awaitable[Any]:
                return callables[index](request, timeout=remaining, **options)  # type: ignore[no-any-return]

            return self.call_with_failover(attempt, timeout)

        return call

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._current(
            _multicallables(self._channels, "unary_stream", method, *args, **kwargs)
        )

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._current(
            _multicallables(self._channels, "stream_unary", method, *args, **kwargs)
        )

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._current(
            _multicallables(self._channels, "stream_stream", method, *args, **kwargs)
        )

    def _current(self, callables: list[Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            return callables[self._order.current](*args, **kwargs)

        return call

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        return self._channels[self.current].get_state(try_to_connect)

    def __repr__(self) -> str:
        return f"AioFailoverChannel(targets={list(self._targets)!r}, current={self.current})"


class TokenChannel(_ChannelBase):
    """The business channel: default deadline and token on every call (module rules).

    Args:
        channel: the transport channel (plain or failover); not closed by :meth:`close`,
            which the client does once for both roles.
        tokens: the token source; ``None`` sends no token (auth disabled).
        default_timeout: seconds, for calls that set no deadline.
    """

    def __init__(
        self, channel: grpc.aio.Channel, tokens: AsyncTokenSource | None, default_timeout: float
    ) -> None:
        super().__init__((channel,))
        self._channel = channel
        self._tokens = tokens
        self._default_timeout = default_timeout

    async def close(self, grace: float | None = None) -> None:
        """Nothing to close here: the client closes the transport."""

    def __repr__(self) -> str:
        auth = "on" if self._tokens is not None else "off"
        return f"TokenChannel(auth={auth}, default_timeout={self._default_timeout!r})"

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        inner = self._channel.unary_unary(method, *args, **kwargs)
        tokens = self._tokens
        default_timeout = self._default_timeout

        async def call(
            request: Any, *, timeout: float | None = None, metadata: Any = None, **options: Any
        ) -> Any:
            if timeout is None:
                timeout = default_timeout
            if tokens is None:
                return await inner(request, timeout=timeout, metadata=metadata, **options)
            start = time.monotonic()
            held = tokens.fresh()
            if held is None:
                held = await tokens.acquire(timeout)
                left = max(timeout - (time.monotonic() - start), 0.0)
            else:
                left = timeout
            try:
                return await inner(
                    request, timeout=left, metadata=with_token(metadata, held[0]), **options
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() != _UNAUTHENTICATED:
                    raise
                # G7: drop exactly the token this call carried, then one more try.
                tokens.on_unauthenticated(held[1])
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    raise
                token, _generation = await tokens.acquire(left)
                left = max(timeout - (time.monotonic() - start), 0.0)
                return await inner(
                    request, timeout=left, metadata=with_token(metadata, token), **options
                )

        return call

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._stream(self._channel.unary_stream(method, *args, **kwargs), bidi=False)

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._stream(self._channel.stream_unary(method, *args, **kwargs), bidi=False)

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._stream(self._channel.stream_stream(method, *args, **kwargs), bidi=True)

    def _stream(self, inner: Any, *, bidi: bool) -> Callable[..., Any]:
        tokens = self._tokens
        default_timeout = None if bidi else self._default_timeout

        def call(
            request: Any = None,
            *,
            timeout: float | None = None,
            metadata: Any = None,
            **options: Any,
        ) -> Any:
            if timeout is None:
                timeout = default_timeout
            if tokens is None:
                return inner(request, timeout=timeout, metadata=metadata, **options)
            held = tokens.fresh()
            if held is not None:  # the usual case: the real call, opened now
                return inner(
                    request, timeout=timeout, metadata=with_token(metadata, held[0]), **options
                )

            async def open_call() -> Any:
                start = time.monotonic()
                token, generation = await tokens.acquire(timeout)
                left = None if timeout is None else max(timeout - (time.monotonic() - start), 0.0)
                pending.token_generation = generation  # which token a rejection drops (G7)
                return inner(request, timeout=left, metadata=with_token(metadata, token), **options)

            pending = PendingCall(open_call)
            return pending

        return call
