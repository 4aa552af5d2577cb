"""The sync client: one connection to the registry, its token, and a clean close (G9).

:class:`Client` owns the transport (see ``sdk._grpc.channel``), the :class:`~sdk.auth.Auth`
token manager that uses it bare, and the business channel (the same transport behind the
deadline/token interceptors). The registry, discovery and registration shells hang off a
client and register their own shutdown with ``_on_close`` (run last-in first-out, before
the channels close, so a registration can still deregister).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

import grpc

from sdk._grpc.auth_calls import AuthCalls
from sdk._grpc.channel import Transport, open_transport
from sdk._grpc.interceptors import CallInterceptor
from sdk.auth import Auth
from sdk.clock import Clock, SystemClock
from sdk.config import Config
from sdk.discovery import Discovery
from sdk.errors import ClientClosed
from sdk.registry import RegistryClient

__all__ = ["Client"]

_log = logging.getLogger("sdk.client")


class Client:
    """A connection to the registry, used as a context manager.

    Args:
        config: where the registry is and how to authenticate.
        clock: where token and lease time comes from; ``None`` is real time
            (tests share a :class:`sdk.testing.ManualClock` with the fake registry).

    Attributes:
        auth: the token manager (:class:`~sdk.auth.Auth`): ``client.auth.token()``.
        registry: the registry RPCs (:class:`~sdk.registry.RegistryClient`).
        discovery: resolve, pick and discovery-aware channels
            (:class:`~sdk.discovery.Discovery`).

    Building a client opens channels lazily (no connection before the first call) and
    makes no call. :meth:`close` (or leaving the ``with`` block) closes every channel.
    """

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self._config = config
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._transport: Transport = open_transport(config)
        self.auth = Auth(AuthCalls(self._transport.channel), config, self._clock)
        interceptor = CallInterceptor(
            None if config.disable_auth else self.auth, config.default_timeout
        )
        self._channel = grpc.intercept_channel(self._transport.channel, interceptor)
        self._on_close: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._closed = False
        self._registry = RegistryClient(self._channel, config, self)
        self._discovery = Discovery(self._registry, config, self._clock)
        self._on_close.append(self._discovery.close)

    @property
    def registry(self) -> RegistryClient:
        return self._registry

    @property
    def discovery(self) -> Discovery:
        return self._discovery

    @property
    def config(self) -> Config:
        return self._config

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def channel(self) -> grpc.Channel:
        """The business channel: default deadline and token on every call.

        For advanced use with generated stubs; failed calls raise ``grpc.RpcError``
        (convert with :func:`sdk.errors.from_rpc_error`), a token that cannot be obtained
        raises a :class:`~sdk.errors.RegistryError`.

        Raises:
            ClientClosed: the client is closed (grpcio crashes the process when a stub is
                built on a closed channel, so the SDK does not hand one out).
        """
        if self._transport.closed:  # close hooks still use it; afterwards it is gone
            raise ClientClosed("the client is closed")
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Run the shells' close hooks (newest first), then close every channel.

        Idempotent; a failing hook is logged and does not stop the others.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            hooks, self._on_close = self._on_close[::-1], []
        try:
            for hook in hooks:
                try:
                    hook()
                except Exception:
                    _log.exception("a close hook failed")
        finally:
            self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        config = self._config
        return f"Client(registry_addr={config.registry_addr!r}, env={config.env!r}, {state})"
