"""Self-registration: register an instance and keep its lease alive (CONTRACT 3.5, G1-G5, G9).

A :class:`Registration` is the sync shell around the sans-IO machine ``sdk._core.lease``;
everything but the IO (request building, action dispatch, the register/ensure fallback,
events) is shared with the asyncio shell in ``sdk._registration_base``. This shell adds:

- one background thread (``sdk-registration-<service>``) owns the machine: it runs the
  actions the machine returns, waits through the client's clock until the machine's
  ``next_deadline`` (``clock.wait_until(deadline, cancel=kick)``), and feeds it the inputs
  that other threads queue (stream answers, stream ends, stop);
- ONE long-lived ``HeartbeatStream`` per lease: a request queue feeds the stream's request
  iterator, and a reader thread per stream turns answers and the stream's end into inputs.
  The business channel gives the stream a token at open and no deadline; after an error the
  machine backs off (1 s, x2, 30 s cap, full jitter from an injectable ``random.Random``) and
  the shell reopens with a fresh token;
- RegisterInstance and DeregisterInstance are blocking calls on the background thread, with
  the business channel's default deadline (a Deregister gets at most 5 s, as in the Go SDK).

What a lost lease does (G1, G2): ``expires_at = 0`` or a stream that ends while a beat waits
for its answer re-registers with the same key at once; a same-key re-register whose beats
still answer 0 (the re-register-after-deregister quirk, 3.10-1) falls back to a key the
server generates, with a warning event (``Reason.NEW_KEY``).

A registry that lost its data (restart without persistence, wipe) answers beats with 0; the
re-register then fails with NOT_FOUND because the *service* is gone too. Without ``ensure``
the registration keeps retrying with backoff (``Reason.REGISTER_FAILED`` warning events) and
recovers only if a service with the same id reappears. With ``ensure=(project, name)`` (the
Go SDK's ``RegisterSelfWithEnsureService``) a NOT_FOUND makes the shell call EnsureService
and register again under the id it returns, so :attr:`Registration.service_id` may change.

``stop()`` sets the cancel event and wakes the clock, so it returns at once from any wait
(backoff included), then deregisters. ``client.close()`` stops every registration (G9).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

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
from sdk.client import Client
from sdk.errors import RegistryError
from sdk.models import Endpoint

__all__ = ["LeaseEvent", "LeaseState", "Reason", "Registration", "start_registration"]

_log = logging.getLogger("sdk.registration")
T = TypeVar("T")


@dataclass(eq=False)
class _Stream:
    """One open HeartbeatStream: its request queue, its call and its reader."""

    id: int
    requests: queue.SimpleQueue[registry_pb2.HeartbeatRequest | None] = field(
        default_factory=queue.SimpleQueue
    )
    call: Any = None
    closed: bool = False
    generation: int = 0  # of the token the stream opened with

    def iterate(self) -> Iterator[registry_pb2.HeartbeatRequest]:
        while (request := self.requests.get()) is not None:
            yield request

    def send(self, request: registry_pb2.HeartbeatRequest) -> None:
        self.requests.put(request)

    def close(self) -> None:
        self.closed = True
        self.requests.put(None)  # half-close, then cancel: the reader ends either way
        if self.call is not None:
            self.call.cancel()


class Registration(RegistrationBase[Client]):
    """One self-registered instance and its heartbeat lease; see the module docs.

    Build it with :func:`start_registration` or ``client.registry.register_self``.

    Attributes:
        state: where the lease is (a :class:`LeaseState`).
        instance_key: the registered key (it changes after a fresh-key fallback).
        expires_at: the server's latest lease expiry (server clock, Unix s); ``0`` before any.
        events: the latest lease events (at most 100), oldest first.
    """

    def __init__(
        self,
        client: Client,
        request: registry_pb2.RegisterInstanceRequest,
        *,
        ensure: tuple[str, str] | None = None,
        on_event: Callable[[LeaseEvent], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(client, request, ensure=ensure, on_event=on_event, rng=rng)
        self._stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None

    # --- waiting --------------------------------------------------------------------------

    def wait_state(self, state: LeaseState, timeout: float = 5.0) -> bool:
        """Block until :attr:`state` is ``state``; ``False`` after ``timeout`` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._lease.state is state, timeout)

    def wait_answers(self, count: int, timeout: float = 5.0) -> bool:
        """Block until :attr:`answers` reaches ``count`` and what they caused has run
        (a re-register, say); ``False`` after ``timeout`` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._has_answers(count), timeout)

    def wait_registered(self, timeout: float = 5.0) -> bool:
        """Block until registered and beating; ``False`` on timeout, stop or failure."""
        with self._cond:
            self._cond.wait_for(self._settled, timeout)
            return self._lease.state is LeaseState.BEATING

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Registration:
        """Register now (in the calling thread), then beat in the background.

        Raises:
            RegistryError: the first RegisterInstance failed (typed by status code); nothing
                keeps running.
            RuntimeError: already started.
            ClientClosed: the client is closed.
        """
        self._check_startable(self._thread is not None)
        self._drive(self._start_flow())
        self._client._on_close.append(self._close_hook)
        self._thread = threading.Thread(
            target=self._run, name=f"sdk-registration-{self._service_id}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, deregister: bool = True, timeout: float = 5.0) -> bool:
        """Stop beating and (by default) deregister; a second call only waits.

        Args:
            deregister: call DeregisterInstance; ``False`` lets the lease lapse on its own.
            timeout: real seconds to wait for the background thread to finish.

        Returns:
            ``True`` once stopped; ``False`` if the thread was still busy (for example in a
            slow Register) after ``timeout``: it then stops by itself.
        """
        self._request_stop(deregister)
        thread = self._thread
        if thread is None:  # never started, or the first Register failed
            stop = self._take_stop()
            if stop is not None:
                self._feed(stop)
            return True
        self._wake()
        if thread is not threading.current_thread():
            thread.join(timeout)
        with contextlib.suppress(ValueError):
            self._client._on_close.remove(self._close_hook)
        return not thread.is_alive()

    def _close_hook(self) -> None:
        self.stop(deregister=self._deregister, timeout=DEREGISTER_TIMEOUT)

    # --- the background loop --------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._done:
                self._kick.clear()
                fed = False
                for item, answer in self._due_inputs():
                    self._feed(item)
                    fed = True
                    if answer:
                        self._note_answer()
                if not fed and self._clock.wait_until(self._wait_deadline(), cancel=self._kick):
                    self._feed(self._lease.poll)
        except Exception:
            _log.exception("registration loop crashed (instance_key=%s)", self.instance_key)
        finally:
            self._shutdown_streams()

    def _wake(self) -> None:
        self._kick.set()
        self._clock.wake()

    def _feed(self, item: Input) -> None:
        self._drive(self._steps(item))

    def _drive(self, flow: Flow[T]) -> T:
        """Run ``flow``, performing each RPC it yields as a blocking call."""
        try:
            call = next(flow)
            while True:
                call = flow.send(self._unary(call))
        except StopIteration as done:
            result: T = done.value
            return result

    def _unary(self, call: Unary) -> Reply:
        try:
            reply: Reply = getattr(self._stub, call.name)(call.request, timeout=call.timeout)
        except (grpc.RpcError, RegistryError, ValueError) as exc:  # ValueError: closed channel
            return as_registry_error(exc, call)
        return reply

    # --- the stream -----------------------------------------------------------------------

    def _open_stream(self, stream_id: int) -> _Stream | str:
        stream = _Stream(stream_id)
        try:
            stream.call = self._stub.HeartbeatStream(stream.iterate())
            stream.generation = self._client.auth.generation
        except (grpc.RpcError, RegistryError, ValueError) as exc:  # no token, closed channel
            stream.close()
            return "CANCELLED" if isinstance(exc, ValueError) else code_name(exc)
        threading.Thread(
            target=self._read, args=(stream,), name=f"sdk-heartbeat-{stream_id}", daemon=True
        ).start()
        return stream

    def _read(self, stream: _Stream) -> None:
        try:
            for reply in stream.call:
                self._push(self._answer_input(stream.id, reply.expires_at), answer=True)
        except grpc.RpcError as exc:
            if not stream.closed:
                self._push(self._failed_input(stream.id, code_name(exc), stream.generation))
        except Exception:  # never let a reader die silently
            _log.exception("heartbeat reader failed")
            if not stream.closed:
                self._push(self._failed_input(stream.id, "UNKNOWN", stream.generation))
        else:
            if not stream.closed:
                self._push(self._ended_input(stream.id))


def start_registration(
    client: Client,
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
) -> Registration:
    """Register an instance and keep its lease alive in the background.

    Args:
        client: the client whose channel, clock and heartbeat policy are used; closing it
            stops (and deregisters) the registration.
        service_id: the owning service; ``0`` with ``ensure`` looks it up/creates it first.
        host: the instance's host (the server requires one even with ``endpoints``).
        instance_key: a stable key; ``""`` lets the server generate one.
        env: the environment label; ``None`` or ``""`` uses ``client.config.env``.
        endpoint: the legacy address; ``""`` with no ``endpoints`` becomes
            ``host:grpc_port`` (or ``host:http_port``, or ``host``).
        endpoints: :class:`~sdk.models.Endpoint` values or mappings with the same keys.
        meta: JSON-able metadata (copied: later changes by the caller are not sent).
        ttl_seconds: the lease; ``<= 0`` is the server's 60 s. Beats run every TTL / 3.
        http_port: the HTTP port, ``0`` for none.
        grpc_port: the gRPC port, ``0`` for none.
        on_event: called with every :class:`LeaseEvent`, on the registration's thread
            (keep it short; exceptions are logged and ignored).
        rng: where backoff jitter comes from (pass ``random.Random(seed)`` in tests).
        ensure: ``(project, name)`` of the service: EnsureService is called when the
            registry answers NOT_FOUND (it lost its data), then the registration retries.

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
    registration = Registration(client, request, ensure=ensure, on_event=on_event, rng=rng)
    return registration.start()
