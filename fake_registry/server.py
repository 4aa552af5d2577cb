"""The fake's grpc.aio server, run on a dedicated event-loop thread.

One loop thread holds thousands of heartbeat streams without a thread each,
and serves sync and asyncio tests alike: the test's own thread (or event loop)
never runs the server.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

__all__ = ["ServerThread", "join_host_port"]

T = TypeVar("T")

#: Builds the services onto a fresh server (called on the loop thread).
Builder = Callable[[aio.Server], Sequence[str]]
Handler = Any  # grpc.RpcMethodHandler
#: Wraps the handler of one method (full path) before the server registers it.
HandlerWrapper = Callable[[str, Handler], Handler]


class _WrappedGeneric(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrap: HandlerWrapper) -> None:
        self._inner = inner
        self._wrap = wrap

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else self._wrap(handler_call_details.method, handler)


class _WrappingServer:
    """Stands in for the server while services are added: wraps every handler.

    Generated ``add_*_to_server`` functions register each service twice, as
    a generic handler and as registered methods; both get the same wrapper.
    """

    def __init__(self, server: aio.Server, wrap: HandlerWrapper) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(h, self._wrap) for h in handlers)
        )

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        )


def join_host_port(host: str, port: int) -> str:
    """``host:port``, with IPv6 literals bracketed (``[::1]:50051``)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


class ServerThread:
    """Owns an event loop thread and the ``grpc.aio.Server`` running on it."""

    def __init__(
        self,
        build: Builder,
        wrap_handler: HandlerWrapper | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        self._build = build
        self._wrap_handler = wrap_handler
        self.host = host
        self.port = port
        self._credentials = credentials
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: aio.Server | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> int:
        """Start serving; return the bound port once calls are answered."""
        if self._server is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="fake-registry-server", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self.port = self.run(self._start_server())
        except BaseException:
            self._stop_loop()
            raise
        return self.port

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    async def _start_server(self) -> int:
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        target: Any = server
        if self._wrap_handler is not None:
            target = _WrappingServer(server, self._wrap_handler)
        names = list(self._build(target))
        health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, target)
        for name in ("", *names):
            await health.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflected = (
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        # What reflection.enable_server_reflection does for an aio server,
        # through the wrapping stand-in.
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected), target
        )
        address = join_host_port(self.host, self.port)
        try:
            if self._credentials is None:
                port = server.add_insecure_port(address)
            else:
                port = server.add_secure_port(address, self._credentials)
        except RuntimeError as exc:  # grpcio reports a failed bind this way
            raise OSError(f"could not bind {address}: {exc}") from None
        if port == 0:
            raise OSError(f"could not bind {address}")
        await server.start()
        self._server = server
        return port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 10.0) -> T:
        """Run ``coro`` on the server's loop and wait for its result."""
        if self._loop is None:
            coro.close()
            raise RuntimeError("server loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self, grace: float | None = None) -> None:
        """Stop serving (cancelling open calls after ``grace`` seconds) and end the thread."""
        server, self._server = self._server, None
        if server is not None and self._loop is not None:
            self.run(server.stop(grace))
            # Handlers the stop cancelled still need loop turns to unwind; a loop stopped
            # before that leaves them to be closed at interpreter exit, noisily.
            self.run(_drain(), timeout=None)
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)


async def _drain(bound: float = 2.0) -> None:
    """Cancel what still runs on the server's loop and let it finish (at most ``bound`` s)."""
    tasks = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=bound)
