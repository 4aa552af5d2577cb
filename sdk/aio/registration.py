"""Self-registration for asyncio: the twin of :mod:`sdk.registration` (CONTRACT 3.5, G1-G5, G9).

An :class:`AsyncRegistration` drives the same sans-IO machine (``sdk._core.lease``) through
the same shared dispatch (``sdk._registration_base``) as the sync ``Registration``, so both
make the same decisions; only the IO differs:

- one task (``sdk-registration-<service>``) owns the machine: it feeds it the inputs that
  readers queue, performs the RPCs the dispatch yields (awaited on ``grpc.aio``), and waits
  through the client's clock until the machine's ``next_deadline``
  (``await sleep_until(clock, deadline, kick)``: a :class:`~sdk.testing.ManualClock`
  ``advance()`` wakes it, an input or ``stop()`` ends the wait at once);
- ONE long-lived ``HeartbeatStream`` per lease: beats go into an ``asyncio.Queue`` that
  feeds the call's request iterator, and a reader task per stream turns answers and the
  stream's end into machine inputs. The stream gets a token at open and no deadline; after
  an error the machine backs off (1 s, x2, 30 s cap, full jitter) and the task reopens it;
  a stream rejected with UNAUTHENTICATED drops that token first, so the reopen carries a
  fresh one (G5, G7);
- lease loss (``expires_at = 0``, a stream ending under an unanswered beat) re-registers
  with the same key, then falls back to a server-generated key (3.10-1, ``Reason.NEW_KEY``);
  with ``ensure=(project, name)`` a NOT_FOUND re-creates the service first (G1, G2).

Cancellation: :meth:`AsyncRegistration.stop` records the stop *before* its first ``await``
and wakes the task, so cancelling the task that awaits ``stop()`` still ends the heartbeat:
the registration task deregisters and finishes on its own (``client.close()`` waits for
it). Cancelling the registration task itself settles the lease as STOPPED without any RPC
(a Register or Deregister it was awaiting counts as failed with CANCELLED) and re-raises:
``CancelledError`` is never swallowed, and never retried. A cancelled :meth:`start`
leaves the lease FAILED (or IDLE if it was still ensuring the service).

Everything runs on the loop the client was made in; callbacks (``on_event``) run on it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import grpc.aio

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk._core.lease_values import LeaseEvent, LeaseState, Reason
from sdk._registration_base import RegistrationBase
from sdk._registration_calls import (
    DEREGISTER_TIMEOUT,
    Flow,
    Input,
    Reply,
    Unary,
    as_registry_error,
    code_name,
    register_request,
)
from sdk.aio._channel import closed_under
from sdk.aio._clock import sleep_until
from sdk.aio.client import AsyncClient
from sdk.errors import RegistryError
from sdk.models import Endpoint

__all__ = ["AsyncRegistration", "LeaseEvent", "LeaseState", "Reason", "start_registration"]

_log = logging.getLogger("sdk.registration")
T = TypeVar("T")
# What opening a call or reading it may raise besides a status: no token (RegistryError),
# a closed channel (grpc.aio.UsageError).
_CALL_ERRORS = (grpc.RpcError, RegistryError, grpc.aio.UsageError)


class _Stream:
    """One open HeartbeatStream: its request queue, its call and its reader task."""

    __slots__ = ("call", "closed", "generation", "id", "reader", "requests")

    def __init__(self, stream_id: int) -> None:
        self.id = stream_id
        self.requests: asyncio.Queue[registry_pb2.HeartbeatRequest | None] = asyncio.Queue()
        self.call: Any = None  # a grpc.aio call, or the channel's call that awaits a token
        self.closed = False
        self.generation: int | None = None  # of its token; None: fetched when first used
        self.reader: asyncio.Task[None] | None = None

    async def iterate(self) -> AsyncIterator[registry_pb2.HeartbeatRequest]:
        while (request := await self.requests.get()) is not None:
            yield request

    def send(self, request: registry_pb2.HeartbeatRequest) -> None:
        self.requests.put_nowait(request)

    def close(self) -> None:
        self.closed = True
        self.requests.put_nowait(None)  # half-close, then cancel: the reader ends either way
        if self.call is not None:
            self.call.cancel()
        if self.reader is not None:
            self.reader.cancel()


class AsyncRegistration(RegistrationBase[AsyncClient]):
    """One self-registered instance and its heartbeat lease, on asyncio; see the module docs.

    Build it with :func:`start_registration` or ``await client.registry.register_self(...)``.
    The observing properties are those of the sync ``Registration`` (and may be read from
    any thread); the ``wait_*`` methods and the lifecycle are coroutines.

    Attributes:
        state: where the lease is (a :class:`LeaseState`).
        instance_key: the registered key (it changes after a fresh-key fallback).
        expires_at: the server's latest lease expiry (server clock, Unix s); ``0`` before any.
        events: the latest lease events (at most 100), oldest first.
    """

    def __init__(
        self,
        client: AsyncClient,
        request: registry_pb2.RegisterInstanceRequest,
        *,
        ensure: tuple[str, str] | None = None,
        on_event: Callable[[LeaseEvent], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(client, request, ensure=ensure, on_event=on_event, rng=rng)
        self._stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
        self._kick = asyncio.Event()
        self._change = asyncio.Event()  # set (and replaced) whenever a wait_* may hold
        self._task: asyncio.Task[None] | None = None
        self._readers: set[asyncio.Task[None]] = set()

    # --- waiting --------------------------------------------------------------------------

    async def wait_state(self, state: LeaseState, timeout: float = 5.0) -> bool:
        """Wait until :attr:`state` is ``state``; ``False`` after ``timeout`` real seconds."""
        return await self._wait_for(lambda: self._lease.state is state, timeout)

    async def wait_answers(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until :attr:`answers` reaches ``count`` and what they caused has run
        (a re-register, say); ``False`` after ``timeout`` real seconds."""
        return await self._wait_for(lambda: self._has_answers(count), timeout)

    async def wait_registered(self, timeout: float = 5.0) -> bool:
        """Wait until registered and beating; ``False`` on timeout, stop or failure."""
        await self._wait_for(self._settled, timeout)
        return self._lease.state is LeaseState.BEATING

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._change.wait()
        except TimeoutError:
            return predicate()
        return True

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> AsyncRegistration:
        """Register now (awaited here), then beat in a background task.

        Raises:
            RegistryError: the first RegisterInstance failed (typed by status code); nothing
                keeps running.
            RuntimeError: already started.
            ClientClosed: the client is closed.
        """
        self._check_startable(self._task is not None)
        # The close hook goes in before the first await: a client.close() that starts while
        # we register then stops (and deregisters) what we register, instead of missing it.
        self._client._on_close.append(self._close_hook)
        try:
            await self._drive(self._start_flow())
        except asyncio.CancelledError:
            self._abandon(stop=False)  # the Register in flight: FAILED, nothing runs
            self._shutdown_streams()
            self._drop_close_hook()
            raise
        except BaseException:
            self._drop_close_hook()
            raise
        if self._done:  # stopped by another task (the close hook, say) while registering
            self._drop_close_hook()
            return self
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"sdk-registration-{self._service_id}"
        )
        return self

    async def stop(self, deregister: bool = True, timeout: float = 5.0) -> bool:
        """Stop beating and (by default) deregister; a second call only waits.

        Returns at once from any wait (backoff included), then awaits the deregistration.
        The stop is recorded before anything is awaited: if the caller is cancelled, the
        registration still stops and deregisters in its own task.

        Args:
            deregister: call DeregisterInstance; ``False`` lets the lease lapse on its own.
            timeout: real seconds to wait for the registration task to finish.

        Returns:
            ``True`` once stopped; ``False`` if the task was still busy (for example in a
            slow Register) after ``timeout``: it then stops by itself.
        """
        self._request_stop(deregister)
        task = self._task
        if task is None:  # never started, the first Register failed, or start() is running
            stop = self._take_stop()
            if stop is not None:
                await self._drive(self._steps(stop))
            return await self._wait_for(lambda: self._done, timeout)
        self._wake()
        from_own_task = asyncio.current_task() is task  # it cannot wait for itself
        if not from_own_task:
            await asyncio.wait({task}, timeout=timeout)
        if task.done():
            self._drop_close_hook()
        return task.done()

    def _drop_close_hook(self) -> None:
        with contextlib.suppress(ValueError):
            self._client._on_close.remove(self._close_hook)

    async def _close_hook(self) -> None:
        await self.stop(deregister=self._deregister, timeout=DEREGISTER_TIMEOUT)

    # --- the background task --------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while not self._done:
                self._kick.clear()
                fed = False
                for item, answer in self._due_inputs():
                    await self._feed(item)
                    fed = True
                    if answer:
                        self._note_answer()
                if not fed and await sleep_until(self._clock, self._wait_deadline(), self._kick):
                    await self._feed(self._lease.poll)
        except asyncio.CancelledError:
            self._abandon(stop=True)
            raise
        except Exception:
            _log.exception("registration loop crashed (instance_key=%s)", self.instance_key)
        finally:
            self._shutdown_streams()
            if self._readers:  # cancelled just now: let them finish before we report done
                await asyncio.wait(set(self._readers), timeout=DEREGISTER_TIMEOUT)

    def _wake(self) -> None:
        self._kick.set()

    async def _feed(self, item: Input) -> None:
        await self._drive(self._steps(item))

    async def _drive(self, flow: Flow[T]) -> T:
        """Run ``flow``, awaiting each RPC it yields."""
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._unary(call))
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            flow.close()  # cancelled mid-RPC: the flow is abandoned, not resumed

    async def _unary(self, call: Unary) -> Reply:
        try:
            reply: Reply = await getattr(self._stub, call.name)(call.request, timeout=call.timeout)
        except _CALL_ERRORS as exc:
            return as_registry_error(exc, call)
        except asyncio.CancelledError:
            closed = closed_under(call.method)
            if closed is None:
                raise  # this task's own cancellation
            return closed
        return reply

    # --- the stream -----------------------------------------------------------------------

    def _open_stream(self, stream_id: int) -> _Stream | str:
        stream = _Stream(stream_id)
        # With a fresh token cached the channel opens the call with exactly that one (no
        # await in between); otherwise it fetches one when the reader first reads.
        held = self._client.auth.fresh()
        stream.generation = None if held is None else held[1]
        try:
            stream.call = self._stub.HeartbeatStream(stream.iterate())
        except _CALL_ERRORS as exc:
            stream.close()
            return _failure_code(exc)
        reader = asyncio.get_running_loop().create_task(
            self._read(stream), name=f"sdk-heartbeat-{stream_id}"
        )
        stream.reader = reader
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return stream

    async def _read(self, stream: _Stream) -> None:
        try:
            async for reply in stream.call:
                self._push(self._answer_input(stream.id, reply.expires_at), answer=True)
        except asyncio.CancelledError:
            # Our close() cancels the call and this task; anything else cancelling the call
            # under a live stream is a failure the machine must hear about. Either way the
            # cancellation goes on.
            if not stream.closed:
                self._push(self._failed_input(stream.id, "CANCELLED", self._generation(stream)))
            raise
        except Exception as exc:
            if not isinstance(exc, _CALL_ERRORS):  # never let a reader die silently
                _log.exception("heartbeat reader failed")
            if not stream.closed:
                code = _failure_code(exc)
                self._push(self._failed_input(stream.id, code, self._generation(stream)))
        else:
            if not stream.closed:
                self._push(self._ended_input(stream.id))

    def _generation(self, stream: _Stream) -> int:
        """The token generation ``stream`` carried (known once a lazily fetched one came)."""
        if stream.generation is not None:
            return stream.generation
        lazy = getattr(stream.call, "token_generation", None)
        return lazy if isinstance(lazy, int) else self._client.auth.generation


def _failure_code(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.UsageError):  # the channel is closed
        return "CANCELLED"
    return code_name(exc)


async def start_registration(
    client: AsyncClient,
    *,
    service_id: int,
    host: str,
    instance_key: str = "",
    env: str | None = None,
    endpoint: str = "",
    endpoints: Sequence[Endpoint | Mapping[str, Any]] = (),
    meta: Mapping[str, Any] | None = None,
    ttl_seconds: int = 0,
    http_port: int = 0,
    grpc_port: int = 0,
    on_event: Callable[[LeaseEvent], None] | None = None,
    rng: random.Random | None = None,
    ensure: tuple[str, str] | None = None,
) -> AsyncRegistration:
    """Register an instance and keep its lease alive in a background task.

    Takes the parameters of :func:`sdk.registration.start_registration`, documented there;
    here ``on_event`` is called on the event loop (keep it short and non-blocking;
    exceptions are logged and ignored), and ``await registration.stop()`` or closing the
    client stops (and deregisters) it.

    Raises:
        RegistryError: the first RegisterInstance failed (for example :class:`NotFound`).
    """
    request = register_request(
        client.config.env,
        service_id=service_id,
        host=host,
        instance_key=instance_key,
        env=env,
        endpoint=endpoint,
        endpoints=endpoints,
        meta=meta,
        ttl_seconds=ttl_seconds,
        http_port=http_port,
        grpc_port=grpc_port,
    )
    registration = AsyncRegistration(client, request, ensure=ensure, on_event=on_event, rng=rng)
    return await registration.start()
