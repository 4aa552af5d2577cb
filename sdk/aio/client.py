"""The asyncio client: the twin of :class:`sdk.Client` on ``grpc.aio`` (G9).

:class:`AsyncClient` owns the ``grpc.aio`` transport, the :class:`~sdk.aio.auth.AsyncAuth`
token manager that uses it bare, and the business channel (the same transport behind the
token channel). The registry, discovery and registration shells register their shutdown
with ``_on_close`` (awaited last-in first-out, before the channels close, so a
registration can still deregister).

``grpc.aio`` channels belong to the event loop they were made in, so an ``AsyncClient``
is made inside a running loop and used from it only::

    async with AsyncClient(config) as client:
        views = await client.registry.list_services("demo")
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

import grpc.aio

from sdk.aio._channel import AioTransport, TokenChannel, open_transport
from sdk.aio.auth import AsyncAuth, AsyncAuthCalls
from sdk.aio.discovery import AsyncDiscovery
from sdk.aio.registry import AsyncRegistryClient
from sdk.clock import Clock, SystemClock
from sdk.config import Config
from sdk.errors import ClientClosed

__all__ = ["AsyncClient"]

_log = logging.getLogger("sdk.client")


class AsyncClient:
    """A connection to the registry for asyncio code, used as an async context manager.

    Args:
        config: where the registry is and how to authenticate.
        clock: where token and lease time comes from; ``None`` is real time (tests share
            a :class:`sdk.testing.ManualClock` with the fake registry).

    Attributes:
        auth: the token manager (:class:`~sdk.aio.auth.AsyncAuth`).
        registry: the registry RPCs (:class:`~sdk.aio.registry.AsyncRegistryClient`).
        discovery: resolve, pick and discovery-aware channels
            (:class:`~sdk.aio.discovery.AsyncDiscovery`).

    Raises:
        RuntimeError: no event loop is running (make the client inside ``async def``).
        ConfigError: a TLS file cannot be read.
    """

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "AsyncClient must be created inside a running event loop "
                "(grpc.aio channels belong to one loop); create it in an async function"
            ) from None
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._transport: AioTransport = open_transport(config)
        self.auth = AsyncAuth(AsyncAuthCalls(self._transport.channel), config, self._clock)
        self._channel = TokenChannel(
            self._transport.channel,
            None if config.disable_auth else self.auth,
            config.default_timeout,
        )
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self._closed = False
        self._closing: asyncio.Task[None] | None = None
        self._registry = AsyncRegistryClient(self._channel, config, self)
        self._discovery = AsyncDiscovery(self._registry, config, self._clock)
        self._on_close.append(self._discovery.close)

    @property
    def registry(self) -> AsyncRegistryClient:
        return self._registry

    @property
    def discovery(self) -> AsyncDiscovery:
        return self._discovery

    @property
    def config(self) -> Config:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def channel(self) -> grpc.aio.Channel:
        """The business channel: default deadline and token on every call.

        For generated stubs (``await stub.Method(request)``); failed calls raise
        ``grpc.aio.AioRpcError`` (convert with :func:`sdk.errors.from_rpc_error`), a token
        that cannot be obtained raises a :class:`~sdk.errors.RegistryError`.

        Raises:
            ClientClosed: the client is closed (as :attr:`sdk.Client.channel` does).
        """
        if self._transport.closed:  # close hooks still use it; afterwards it is gone
            raise ClientClosed("the client is closed")
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """Await the shells' close hooks (newest first), then close every channel.

        Idempotent: a second call awaits the same close. The close runs as a task of its
        own, so a caller that is cancelled (or times out) does not cut it short: the
        remaining hooks still run and the channels still close. A failing hook is logged
        and does not stop the others.
        """
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.get_running_loop().create_task(
                self._close(), name="sdk-client-close"
            )
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        hooks, self._on_close = self._on_close[::-1], []
        try:
            for hook in hooks:
                try:
                    await hook()
                except Exception:
                    _log.exception("a close hook failed")
        finally:
            await self._transport.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        config = self._config
        return f"AsyncClient(registry_addr={config.registry_addr!r}, env={config.env!r}, {state})"
