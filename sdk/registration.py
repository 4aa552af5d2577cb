"""Self-registration: register an instance and keep its lease alive (CONTRACT 3.5, G1-G5, G9).

A :class:`Registration` is the sync shell around the sans-IO machine ``sdk._core.lease``:

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
import math
import queue
import random
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk._core.backoff import Backoff
from sdk._core.lease import Lease
from sdk._core.lease_values import (
    Action,
    CloseStream,
    Deregister,
    Emit,
    LeaseEvent,
    LeaseParams,
    LeaseState,
    OpenStream,
    Reason,
    Register,
    SendBeat,
)
from sdk.client import Client
from sdk.errors import NotFound, RegistryError, from_rpc_error
from sdk.models import Endpoint, _authority
from sdk.registry import endpoints_json_text, json_object_text

__all__ = ["LeaseEvent", "LeaseState", "Reason", "Registration", "start_registration"]

_log = logging.getLogger("sdk.registration")
_METHOD = "/xiaozhizhang.registry.v1.RegistryService/"
_DEREGISTER_TIMEOUT = 5.0
_EVENTS_KEPT = 100
_DONE = frozenset({LeaseState.STOPPED, LeaseState.FAILED})
Input = Callable[[float], list[Action]]


def _code_name(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if callable(code):
        code = code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


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

    def close(self) -> None:
        self.closed = True
        self.requests.put(None)  # half-close, then cancel: the reader ends either way
        if self.call is not None:
            self.call.cancel()


class Registration:
    """One self-registered instance and its heartbeat lease; see the module docs.

    Build it with :func:`start_registration` (later ``client.registry.register_self``).

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
        self._client = client
        self._clock = client.clock
        self._request = registry_pb2.RegisterInstanceRequest()
        self._request.CopyFrom(request)  # ours: the caller's message is never touched (G14)
        self._service_id = request.service_id
        self._ensure = ensure
        self._on_event = on_event
        rand = (rng if rng is not None else random.Random()).random  # noqa: S311 (jitter, not secrets)
        policy = client.config.heartbeat
        params = LeaseParams(
            min_interval=policy.min_interval,
            answer_timeout=policy.answer_timeout,
            backoff=Backoff(
                policy.backoff_initial,
                policy.backoff_multiplier,
                policy.backoff_max,
                policy.jitter,
            ),
        )
        self._lease = Lease(request.instance_key, int(request.ttl_seconds), params, rand=rand)
        self._stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
        self._cond = threading.Condition()
        self._events: deque[LeaseEvent] = deque(maxlen=_EVENTS_KEPT)
        self._inbox: deque[tuple[Input, bool]] = deque()
        self._answers = 0
        self._kick = threading.Event()
        self._streams: dict[int, _Stream] = {}
        self._thread: threading.Thread | None = None
        self._stop_requested = False
        self._deregister = True
        self._last_error: RegistryError | None = None

    # --- observing ------------------------------------------------------------------------

    @property
    def state(self) -> LeaseState:
        return self._lease.state

    @property
    def instance_key(self) -> str:
        return self._lease.instance_key

    @property
    def service_id(self) -> int:
        """The service registered under (it changes if ``ensure`` re-created the service)."""
        return self._service_id

    @property
    def expires_at(self) -> int:
        return self._lease.expires_at

    @property
    def interval(self) -> float:
        """Seconds between beats: ``effective_ttl / 3``, at least the policy's floor."""
        return self._lease.interval

    @property
    def events(self) -> tuple[LeaseEvent, ...]:
        with self._cond:
            return tuple(self._events)

    @property
    def last_error(self) -> RegistryError | None:
        """The latest failed RegisterInstance, as a typed error; ``None`` if none failed."""
        return self._last_error

    def __repr__(self) -> str:
        return (
            f"Registration(service_id={self._service_id}, instance_key={self.instance_key!r}, "
            f"state={self.state.name}, expires_at={self.expires_at})"
        )

    def wait_state(self, state: LeaseState, timeout: float = 5.0) -> bool:
        """Block until :attr:`state` is ``state``; ``False`` after ``timeout`` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._lease.state is state, timeout)

    @property
    def answers(self) -> int:
        """How many beat answers (``0`` ones included) were handled so far."""
        with self._cond:
            return self._answers

    def wait_answers(self, count: int, timeout: float = 5.0) -> bool:
        """Block until :attr:`answers` reaches ``count`` and what they caused has run
        (a re-register, say); ``False`` after ``timeout`` real seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: self._answers >= count, timeout)

    def wait_registered(self, timeout: float = 5.0) -> bool:
        """Block until registered and beating; ``False`` on timeout, stop or failure."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._lease.state is LeaseState.BEATING or self._lease.state in _DONE,
                timeout,
            )
            return self._lease.state is LeaseState.BEATING

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Registration:
        """Register now (in the calling thread), then beat in the background.

        Raises:
            RegistryError: the first RegisterInstance failed (typed by status code); nothing
                keeps running.
            RuntimeError: already started, or the client is closed.
        """
        if self._thread is not None or self._lease.state is not LeaseState.IDLE:
            raise RuntimeError("registration already started")
        if self._client.closed:
            raise RuntimeError("the client is closed")
        if self._service_id <= 0 and self._ensure is not None:
            self._ensure_service()
        self._feed(self._lease.start)
        if self.state is LeaseState.FAILED:
            error = self._last_error
            assert error is not None
            raise error
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
        with self._cond:
            first = not self._stop_requested
            self._stop_requested = True
            if first:
                self._deregister = deregister
        thread = self._thread
        if thread is None:  # never started, or the first Register failed
            if first:
                self._feed(lambda now: self._lease.stop(now, deregister=deregister))
            return True
        self._kick.set()
        self._clock.wake()
        if thread is not threading.current_thread():
            thread.join(timeout)
        with contextlib.suppress(ValueError):
            self._client._on_close.remove(self._close_hook)
        return not thread.is_alive()

    def _close_hook(self) -> None:
        self.stop(deregister=self._deregister, timeout=_DEREGISTER_TIMEOUT)

    # --- the background loop --------------------------------------------------------------

    def _run(self) -> None:
        stop_fed = False
        try:
            while self._lease.state not in _DONE:
                self._kick.clear()
                while self._inbox:
                    item, answer = self._inbox.popleft()
                    self._feed(item)
                    if answer:  # counted once everything it caused has run
                        with self._cond:
                            self._answers += 1
                            self._cond.notify_all()
                if self._stop_requested and not stop_fed:
                    stop_fed = True
                    self._feed(lambda now: self._lease.stop(now, deregister=self._deregister))
                    continue
                deadline = self._lease.next_deadline
                # The machine's poll runs everything due at its next_deadline, so a reached
                # deadline always moves something: no spin.
                if self._clock.wait_until(
                    math.inf if deadline is None else deadline, cancel=self._kick
                ):
                    self._feed(self._lease.poll)
        except Exception:
            _log.exception("registration loop crashed (instance_key=%s)", self.instance_key)
        finally:
            for stream in list(self._streams.values()):
                stream.close()
            self._streams.clear()
            with self._cond:
                self._cond.notify_all()

    def _push(self, item: Input, *, answer: bool = False) -> None:
        """Queue an input from another thread and wake the loop."""
        self._inbox.append((item, answer))
        self._kick.set()
        self._clock.wake()

    def _feed(self, item: Input) -> None:
        """Give the machine one input and run what it returns (and what that causes)."""
        pending = deque([item])
        while pending:
            for action in pending.popleft()(self._clock.monotonic()):
                follow_up = self._execute(action)
                if follow_up is not None:
                    pending.append(follow_up)

    def _execute(self, action: Action) -> Input | None:
        lease = self._lease
        if isinstance(action, Emit):
            self._emit(action.event)
        elif isinstance(action, Register):
            return self._register(action.instance_key)
        elif isinstance(action, OpenStream):
            return self._open(action.stream)
        elif isinstance(action, SendBeat):
            stream = self._streams.get(action.stream)
            if stream is not None:
                stream.requests.put(
                    registry_pb2.HeartbeatRequest(
                        service_id=self._service_id, instance_key=action.instance_key
                    )
                )
        elif isinstance(action, CloseStream):
            closing = self._streams.pop(action.stream, None)
            if closing is not None:
                closing.close()
        elif isinstance(action, Deregister):
            try:
                self._stub.DeregisterInstance(
                    registry_pb2.DeregisterInstanceRequest(
                        service_id=self._service_id, instance_key=action.instance_key
                    ),
                    timeout=min(_DEREGISTER_TIMEOUT, self._client.config.default_timeout),
                )
            except (grpc.RpcError, RegistryError, ValueError) as exc:
                code = _code_name(exc) if not isinstance(exc, ValueError) else "CANCELLED"
                return lambda now: lease.deregister_failed(now, code)
            return lease.deregistered
        return None

    # --- actions --------------------------------------------------------------------------

    def _emit(self, event: LeaseEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
        level = logging.WARNING if event.reason.warning else logging.INFO
        _log.log(
            level,
            "registration service_id=%s key=%s: %s -> %s (%s%s)",
            self._service_id,
            event.instance_key,
            event.previous.name,
            event.state.name,
            event.reason.value,
            f": {event.detail}" if event.detail else "",
        )
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                _log.exception("on_event callback failed")

    def _register(self, key: str) -> Input:
        lease = self._lease
        try:
            reply = self._call_register(key)
        except RegistryError as exc:
            if isinstance(exc, NotFound) and self._ensure is not None:
                try:
                    self._ensure_service()
                    reply = self._call_register(key)
                except RegistryError as again:
                    exc = again
                else:
                    return lambda now: lease.registered(now, reply.instance_key, reply.expires_at)
            self._last_error = exc
            code = exc.code.name if exc.code is not None else "UNKNOWN"
            return lambda now: lease.register_failed(now, code)
        return lambda now: lease.registered(now, reply.instance_key, reply.expires_at)

    def _call_register(self, key: str) -> registry_pb2.RegisterInstanceResponse:
        request = registry_pb2.RegisterInstanceRequest()
        request.CopyFrom(self._request)
        request.service_id = self._service_id
        request.instance_key = key
        try:
            reply: registry_pb2.RegisterInstanceResponse = self._stub.RegisterInstance(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, _METHOD + "RegisterInstance") from exc
        except ValueError as exc:  # grpcio: the channel is closed
            raise RegistryError(str(exc), code=grpc.StatusCode.CANCELLED) from exc
        return reply

    def _ensure_service(self) -> None:
        assert self._ensure is not None
        project, name = self._ensure
        try:
            reply = self._stub.EnsureService(
                registry_pb2.EnsureServiceRequest(project=project, name=name)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, _METHOD + "EnsureService") from exc
        if reply.service.id != self._service_id:
            _log.warning(
                "service %s/%s ensured as id %s (was %s)",
                project,
                name,
                reply.service.id,
                self._service_id,
            )
        self._service_id = reply.service.id

    def _open(self, stream_id: int) -> Input | None:
        lease = self._lease
        stream = _Stream(stream_id)
        try:
            stream.call = self._stub.HeartbeatStream(stream.iterate())
            stream.generation = self._client.auth.generation
        except (grpc.RpcError, RegistryError, ValueError) as exc:  # no token, closed channel
            code = _code_name(exc) if not isinstance(exc, ValueError) else "CANCELLED"
            if code == "UNAUTHENTICATED":  # G5/G7: reopen with a fresh token
                self._client.auth.on_unauthenticated(self._client.auth.generation)
            stream.close()
            return lambda now: lease.stream_failed(now, stream_id, code)
        self._streams[stream_id] = stream
        threading.Thread(
            target=self._read, args=(stream,), name=f"sdk-heartbeat-{stream_id}", daemon=True
        ).start()
        return None

    def _answer(self, stream_id: int, expires_at: int) -> Input:
        lease = self._lease
        return lambda now: lease.beat_answered(now, stream_id, expires_at)

    def _read(self, stream: _Stream) -> None:
        lease, stream_id = self._lease, stream.id
        try:
            for reply in stream.call:
                self._push(self._answer(stream_id, reply.expires_at), answer=True)
        except grpc.RpcError as exc:
            if not stream.closed:
                code = _code_name(exc)
                if code == "UNAUTHENTICATED":  # G5/G7: reopen with a fresh token
                    self._client.auth.on_unauthenticated(stream.generation)
                self._push(lambda now: lease.stream_failed(now, stream_id, code))
        except Exception:  # never let a reader die silently
            _log.exception("heartbeat reader failed")
            if not stream.closed:
                self._push(lambda now: lease.stream_failed(now, stream_id, "UNKNOWN"))
        else:
            if not stream.closed:
                self._push(lambda now: lease.stream_ended(now, stream_id))


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
    ports = grpc_port or http_port
    method = "/xiaozhizhang.registry.v1.RegistryService/RegisterInstance"
    endpoints_json = endpoints_json_text(endpoints, method)
    if not endpoint and not endpoints_json and host:
        endpoint = _authority(host, ports)
    request = registry_pb2.RegisterInstanceRequest(
        service_id=service_id,
        instance_key=instance_key,
        env=env or client.config.env,
        host=host,
        endpoint=endpoint,
        meta_json=json_object_text("meta", meta, method),
        ttl_seconds=ttl_seconds,
        endpoints_json=endpoints_json,
        http_port=http_port,
        grpc_port=grpc_port,
    )
    registration = Registration(client, request, ensure=ensure, on_event=on_event, rng=rng)
    return registration.start()
