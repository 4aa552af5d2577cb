"""One failable backend: a real gRPC server that a failover test can break on demand.

A :class:`Backend` serves ``fakecontrol.v1.EchoService`` (the reply names the
backend that answered) and ``grpc.health.v1.Health`` on loopback, on its own
event-loop thread. The test makes it fail, hang, refuse connections and
recover (docs/backends.md). :mod:`fake_registry.backends` registers several as
the instances of one service in a fake.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from protos.fakecontrol.v1 import echo_pb2, echo_pb2_grpc

__all__ = ["ECHO_SERVICE", "Backend"]

#: Full name of the echo service, also the health service name it reports under.
ECHO_SERVICE: str = echo_pb2.DESCRIPTOR.services_by_name["EchoService"].full_name

T = TypeVar("T")
Context = aio.ServicerContext[Any, Any]

_CONTROL_TIMEOUT = 10.0  # seconds a control waits for the backend's loop thread
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True, slots=True)
class _Mode:
    """How Echo answers right now; ``code`` OK means normally."""

    code: grpc.StatusCode = grpc.StatusCode.OK
    details: str = ""
    hang: bool = False
    serving: bool = True


_HEALTHY = _Mode()


class _EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    async def Echo(self, request: echo_pb2.EchoRequest, context: Context) -> echo_pb2.EchoResponse:
        return await self._backend._echo(request, context)


class Backend:
    """One real gRPC server on ``host:port`` that a test can fail on demand.

    Args:
        instance_key: the name Echo replies carry (the registered instance's key).
        host: interface to bind and to advertise; loopback by default.
        port: ``0`` picks a free port at the first :meth:`start`; the bound
            port is then kept for every restart.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, instance_key: str = "backend", *, host: str = "127.0.0.1", port: int = 0):
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535 (got {port!r})")
        self.instance_key = instance_key
        self.host = host
        self._port = port
        self._control = threading.RLock()  # one control at a time, from any thread
        self._lock = threading.Lock()  # mode and counters, shared with the loop thread
        self._arrived = threading.Condition(self._lock)  # notified per Echo call
        self._mode = _HEALTHY
        self._calls = self._received = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: aio.Server | None = None
        self._health: Any = None  # grpc_health ships no type hints
        # Set and replaced (on the loop thread only) at every control; hung calls wait on it.
        self._changed = asyncio.Event()

    @property
    def port(self) -> int:
        """The bound port (the requested one, maybe ``0``, before :meth:`start`)."""
        return self._port

    @property
    def address(self) -> str:
        """``"host:port"``, also while refused or stopped (``RuntimeError`` if never started)."""
        if self._port == 0:
            raise RuntimeError("the backend has no port yet; call start() first")
        return f"{self.host}:{self._port}"

    @property
    def listening(self) -> bool:
        """``True`` while the server accepts connections (not refused or stopped)."""
        return self._server is not None

    @property
    def calls(self) -> int:
        """Echo calls answered OK so far (what the last reply's ``served`` said)."""
        with self._lock:
            return self._calls

    @property
    def received(self) -> int:
        """Echo calls that reached this backend, whatever their outcome."""
        with self._lock:
            return self._received

    def wait_received(self, count: int, timeout: float = 5.0) -> None:
        """Block until :attr:`received` reaches ``count`` (e.g. a call is hung here).

        Args:
            count: the total to wait for; ``0`` returns at once.
            timeout: real seconds to wait at most.

        Raises:
            TimeoutError: fewer calls arrived within ``timeout``.
        """
        with self._arrived:
            arrived = self._arrived.wait_for(lambda: self._received >= count, timeout)
            received = self._received
        if not arrived:  # raised outside the lock: repr() takes it
            raise TimeoutError(f"{self!r}: {received} of {count} Echo calls within {timeout}s")

    def __repr__(self) -> str:
        with self._lock:
            mode = self._mode
        if self._server is None:
            state = "stopped" if self._loop is None else "refusing"
        elif mode.hang or mode.code is not grpc.StatusCode.OK:
            state = "hanging" if mode.hang else f"failing {mode.code.name}"
        else:
            state = "healthy"
        return f"Backend({self.instance_key!r}, {self.host}:{self._port}, {state})"

    # --- lifecycle --------------------------------------------------------

    def start(self) -> Backend:
        """Start serving (again, on the same port, keeping the mode); return once serving.

        Raises:
            RuntimeError: already listening.
            OSError: the port could not be bound (on a restart: taken meanwhile).
        """
        with self._control:
            if self._server is not None:
                raise RuntimeError(f"{self!r} is already listening")
            new_loop = self._loop is None
            if new_loop:
                self._loop = asyncio.new_event_loop()
                name = f"fake-backend-{self.instance_key}"
                self._thread = threading.Thread(
                    target=self._run_loop, args=(self._loop,), name=name, daemon=True
                )
                self._thread.start()
            try:
                self._port = self._run(self._serve())
            except BaseException:
                if new_loop:
                    self.stop()
                raise
        return self

    def refuse(self) -> None:
        """Stop listening, so new connections are refused; keep the port and the loop.

        Open calls, hung ones included, end at once with UNAVAILABLE.
        :meth:`recover` listens on the same port again. No-op when not listening.
        """
        with self._control:
            if self._server is not None:
                self._run(self._close())

    def stop(self) -> None:
        """Stop serving, end every open call and the loop thread. Idempotent."""
        with self._control:
            self.refuse()
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is not None:
                loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=_CONTROL_TIMEOUT)

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- controls ---------------------------------------------------------

    def fail(
        self,
        code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        details: str = "failure injected by the test",
        *,
        serving: bool | None = None,
    ) -> None:
        """Answer every Echo call with ``code`` and ``details`` until :meth:`recover`.

        Args:
            code: the status to answer; anything but OK.
            details: the status message the client sees.
            serving: what health Check answers meanwhile; ``None`` means
                NOT_SERVING for UNAVAILABLE (the backend admits it is down)
                and SERVING for other codes (a broken handler in a live process).

        Calls hung by :meth:`hang` are released and answer ``code`` too.
        """
        if code is grpc.StatusCode.OK:
            raise ValueError("fail() needs an error code; use recover() to answer OK")
        if serving is None:
            serving = code is not grpc.StatusCode.UNAVAILABLE
        self._set_mode(_Mode(code, details, hang=False, serving=serving))

    def hang(self, *, serving: bool = True) -> None:
        """Never answer Echo calls, so callers hit their own deadline.

        Args:
            serving: what health Check answers meanwhile (it keeps answering).

        Hung calls end at the next control: :meth:`fail` answers them its
        code, :meth:`recover` answers them OK, :meth:`refuse` and
        :meth:`stop` abort them with UNAVAILABLE.
        """
        self._set_mode(_Mode(hang=True, serving=serving))

    def recover(self) -> None:
        """Back to healthy: answer OK, report SERVING, listen again if refused.

        After :meth:`refuse` the server restarts on the same port. Channels
        that saw the refusal, and new ones sharing grpcio's global subchannel
        pool, stay in reconnect backoff for about 1 s (docs/backends.md).
        """
        with self._control:
            self._set_mode(_HEALTHY)
            if self._server is None:
                self.start()

    # --- loop-thread side -------------------------------------------------

    def _set_mode(self, mode: _Mode) -> None:
        with self._control:
            with self._lock:
                self._mode = mode
            if self._loop is not None:
                self._run(self._publish())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the backend's loop is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CONTROL_TIMEOUT)

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        loop.close()

    async def _serve(self) -> int:
        # so_reuseport off: a restart must not share the port with a stranger.
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        echo_pb2_grpc.add_EchoServiceServicer_to_server(_EchoServicer(self), server)
        health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        address = f"{self.host}:{self._port}"
        port = server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"could not bind {address}")
        await server.start()
        self._server, self._health = server, health
        await self._publish()
        return port

    async def _close(self) -> None:
        server, self._server, self._health = self._server, None, None
        if server is not None:
            await server.stop(None)  # None: abort open calls now, hung ones included

    async def _publish(self) -> None:
        """Wake hung calls and report the mode's health status."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        with self._lock:
            status = _SERVING if self._mode.serving else _NOT_SERVING
        for name in ("", ECHO_SERVICE) if self._health is not None else ():
            await self._health.set(name, status)

    async def _echo(self, request: echo_pb2.EchoRequest, context: Context) -> echo_pb2.EchoResponse:
        with self._arrived:
            self._received += 1
            self._arrived.notify_all()
        while True:
            with self._lock:
                mode = self._mode
            if not mode.hang:
                break
            # Safe: a control stores the new mode before _publish sets this event.
            await self._changed.wait()
        if mode.code is not grpc.StatusCode.OK:
            await context.abort(mode.code, mode.details)
        with self._lock:
            self._calls += 1
            served = self._calls
        return echo_pb2.EchoResponse(
            message=request.message, instance_key=self.instance_key, served=served
        )
