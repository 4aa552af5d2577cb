"""What the sync and asyncio registration shells share: everything but the IO.

``sdk.registration.Registration`` (threads) and ``sdk.aio.registration.AsyncRegistration``
(tasks) drive the same sans-IO machine, ``sdk._core.lease.Lease``; only how they *wait* and
how they *call* differs. Here, once:

- :meth:`RegistrationBase._steps` feeds one input to the machine and runs what it returns,
  as a generator (httpx's auth-flow pattern, DESIGN 5.6): actions that need no RPC run here
  (events; a beat into the open stream's queue; closing a stream; opening one through the
  shell's non-blocking ``_open_stream``), and each RPC is *yielded* as a ``Unary``
  (``sdk._registration_calls``); the shell performs it, blocking or awaited, and sends back
  the reply or the :class:`~sdk.errors.RegistryError` it failed with;
- the register fallback (NOT_FOUND with ``ensure``: EnsureService, register again under the
  id it returns), deregistration and stream outcomes (an UNAUTHENTICATED stream drops its
  token, so the reopen carries a fresh one), the inbox through which readers hand inputs to
  the one loop that owns the machine, the stop bookkeeping;
- the observing side: properties, the bounded event log, logging and ``on_event``.

Rules for a shell: one loop (thread or task) owns the machine and is the only caller of
``_steps``; readers only ``_push``; ``_wake`` ends that loop's clock wait early;
``_changed`` (optional) wakes the shell's own waiters.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from google.protobuf.message import Message

from protos.registry.v1 import registry_pb2
from sdk._core.lease import Lease
from sdk._core.lease_values import (
    Action,
    CloseStream,
    Deregister,
    Emit,
    LeaseEvent,
    LeaseState,
    OpenStream,
    Register,
    SendBeat,
)
from sdk._registration_calls import (
    DEREGISTER_TIMEOUT,
    ClientLike,
    Flow,
    Input,
    StreamLike,
    Unary,
    code_name,
    lease_params,
)
from sdk.errors import ClientClosed, NotFound, RegistryError

__all__ = ["RegistrationBase"]

_log = logging.getLogger("sdk.registration")
_EVENTS_KEPT = 100
_DONE = frozenset({LeaseState.STOPPED, LeaseState.FAILED})
C = TypeVar("C", bound=ClientLike)


class RegistrationBase(ABC, Generic[C]):
    """The shared half of a registration; the shells add the IO (see the module docs)."""

    def __init__(
        self,
        client: C,
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
        params = lease_params(client.config.heartbeat)
        self._lease = Lease(request.instance_key, int(request.ttl_seconds), params, rand=rand)
        # Guards what other threads read (events, answers); the sync shell waits on it too.
        self._cond = threading.Condition()
        self._events: deque[LeaseEvent] = deque(maxlen=_EVENTS_KEPT)
        self._inbox: deque[tuple[Input, bool]] = deque()
        self._answers = 0
        self._streams: dict[int, StreamLike] = {}
        self._stop_requested = False
        self._stop_fed = False
        self._deregister = True
        self._last_error: RegistryError | None = None

    # --- observing ------------------------------------------------------------------------

    @property
    def state(self) -> LeaseState:
        """Where the lease is (a :class:`LeaseState`)."""
        return self._lease.state

    @property
    def instance_key(self) -> str:
        """The registered key (it changes after a fresh-key fallback)."""
        return self._lease.instance_key

    @property
    def service_id(self) -> int:
        """The service registered under (it changes if ``ensure`` re-created the service)."""
        return self._service_id

    @property
    def expires_at(self) -> int:
        """The server's latest lease expiry (server clock, Unix s); ``0`` before any."""
        return self._lease.expires_at

    @property
    def interval(self) -> float:
        """Seconds between beats: ``effective_ttl / 3``, at least the policy's floor."""
        return self._lease.interval

    @property
    def events(self) -> tuple[LeaseEvent, ...]:
        """The latest lease events (at most 100), oldest first."""
        with self._cond:
            return tuple(self._events)

    @property
    def last_error(self) -> RegistryError | None:
        """The latest failed RegisterInstance, as a typed error; ``None`` if none failed."""
        return self._last_error

    @property
    def answers(self) -> int:
        """How many beat answers (``0`` ones included) were handled so far."""
        with self._cond:
            return self._answers

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(service_id={self._service_id}, "
            f"instance_key={self.instance_key!r}, state={self.state.name}, "
            f"expires_at={self.expires_at})"
        )

    # predicates of the shells' wait_* methods
    def _has_answers(self, count: int) -> bool:
        return self._answers >= count

    def _settled(self) -> bool:
        state = self._lease.state
        return state is LeaseState.BEATING or state in _DONE

    @property
    def _done(self) -> bool:
        return self._lease.state in _DONE

    # --- hooks for the shells -------------------------------------------------------------

    @abstractmethod
    def _open_stream(self, stream_id: int) -> StreamLike | str:
        """Open HeartbeatStream ``stream_id`` and start its reader, without blocking.

        Returns the stream, or the status code name it failed to open with.
        """

    @abstractmethod
    def _wake(self) -> None:
        """Make the loop's clock wait return early (an input was queued or stop asked)."""

    def _changed(self) -> None:
        """Something a ``wait_*`` may wait for changed (``_cond`` is already notified)."""

    # --- starting and stopping ------------------------------------------------------------

    def _check_startable(self, started: bool) -> None:
        if started or self._lease.state is not LeaseState.IDLE:
            raise RuntimeError("registration already started")
        if self._client.closed:
            raise ClientClosed("the client is closed")

    def _start_flow(self) -> Flow[None]:
        """Ensure the service if asked to find it, then register: the caller's first step.

        Raises:
            RegistryError: EnsureService or the first RegisterInstance failed.
        """
        if self._service_id <= 0 and self._ensure is not None:
            result = yield self._ensure_call()
            if isinstance(result, RegistryError):
                raise result
            self._adopt_service(result)
        yield from self._steps(self._lease.start)
        if self._lease.state is LeaseState.FAILED:
            error = self._last_error
            assert error is not None
            raise error

    def _request_stop(self, deregister: bool) -> None:
        """Record a stop request; the first one's ``deregister`` counts."""
        with self._cond:
            if not self._stop_requested:
                self._deregister = deregister
            self._stop_requested = True

    def _take_stop(self) -> Input | None:
        """The stop input, once, after a stop was requested."""
        if not self._stop_requested or self._stop_fed:
            return None
        self._stop_fed = True
        lease, deregister = self._lease, self._deregister
        return lambda now: lease.stop(now, deregister=deregister)

    def _abandon(self, *, stop: bool) -> None:
        """The loop or the first Register was cancelled: settle without any IO.

        A Register or Deregister in flight counts as failed with CANCELLED; ``stop`` then
        stops the lease without deregistering (nothing runs any more to do it), so
        :attr:`state` stays truthful and ``wait_*`` callers are released.
        """
        lease = self._lease
        try:
            self._feed_offline(lambda now: lease.register_failed(now, "CANCELLED"))
            self._feed_offline(lambda now: lease.deregister_failed(now, "CANCELLED"))
            if stop:
                self._feed_offline(lambda now: lease.stop(now, deregister=False))
        except Exception:  # settling must not hide the cancellation being handled
            _log.exception("settling a cancelled registration failed")

    def _shutdown_streams(self) -> None:
        for stream in list(self._streams.values()):
            stream.close()
        self._streams.clear()
        with self._cond:
            self._cond.notify_all()
        self._changed()

    # --- the loop's inputs ----------------------------------------------------------------

    def _push(self, item: Input, *, answer: bool = False) -> None:
        """Queue an input for the loop (from a reader) and wake the loop."""
        self._inbox.append((item, answer))
        self._wake()

    def _due_inputs(self) -> Iterator[tuple[Input, bool]]:
        """What the loop feeds before waiting: queued inputs, then a requested stop."""
        while self._inbox:
            yield self._inbox.popleft()
        stop = self._take_stop()
        if stop is not None:
            yield stop, False

    def _note_answer(self) -> None:
        """Count an answer, once everything it caused has run (a re-register, say)."""
        with self._cond:
            self._answers += 1
            self._cond.notify_all()
        self._changed()

    def _wait_deadline(self) -> float:
        """When the loop must poll next (the machine's ``poll`` runs everything due at its
        ``next_deadline``, so a reached deadline always moves something: no spin)."""
        deadline = self._lease.next_deadline
        return math.inf if deadline is None else deadline

    def _answer_input(self, stream_id: int, expires_at: int) -> Input:
        lease = self._lease
        return lambda now: lease.beat_answered(now, stream_id, expires_at)

    def _ended_input(self, stream_id: int) -> Input:
        lease = self._lease
        return lambda now: lease.stream_ended(now, stream_id)

    def _failed_input(self, stream_id: int, code: str, generation: int) -> Input:
        """Stream ``stream_id`` failed with ``code``; it carried the token of ``generation``."""
        if code == "UNAUTHENTICATED":  # G5/G7: the reopen must carry a fresh token
            self._client.auth.on_unauthenticated(generation)
        lease = self._lease
        return lambda now: lease.stream_failed(now, stream_id, code)

    # --- running the machine's actions ----------------------------------------------------

    def _steps(self, item: Input) -> Flow[None]:
        """Feed ``item``, run its actions and whatever they cause; yield each RPC."""
        pending = deque([item])
        while pending:
            for action in pending.popleft()(self._clock.monotonic()):
                follow_up = yield from self._act(action)
                if follow_up is not None:
                    pending.append(follow_up)

    def _feed_offline(self, item: Input) -> None:
        """Feed an input whose actions need no RPC (settling after a cancellation)."""
        flow = self._steps(item)
        for call in flow:
            flow.close()
            raise RuntimeError(f"{call.name} cannot run here")

    def _act(self, action: Action) -> Flow[Input | None]:
        if isinstance(action, Emit):
            self._emit(action.event)
        elif isinstance(action, Register):
            return (yield from self._register_flow(action.instance_key))
        elif isinstance(action, OpenStream):
            return self._open(action.stream)
        elif isinstance(action, SendBeat):
            stream = self._streams.get(action.stream)
            if stream is not None:
                stream.send(
                    registry_pb2.HeartbeatRequest(
                        service_id=self._service_id, instance_key=action.instance_key
                    )
                )
        elif isinstance(action, CloseStream):
            closing = self._streams.pop(action.stream, None)
            if closing is not None:
                closing.close()
        elif isinstance(action, Deregister):
            return (yield from self._deregister_flow(action.instance_key))
        return None

    def _emit(self, event: LeaseEvent) -> None:
        with self._cond:
            self._events.append(event)
            self._cond.notify_all()
        self._changed()
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

    def _open(self, stream_id: int) -> Input | None:
        opened = self._open_stream(stream_id)
        if isinstance(opened, str):  # no token, closed channel, rejected at open
            return self._failed_input(stream_id, opened, self._client.auth.generation)
        self._streams[stream_id] = opened
        return None

    def _register_flow(self, key: str) -> Flow[Input]:
        """Register ``key``; on NOT_FOUND with ``ensure``, ensure the service and retry."""
        lease = self._lease
        result = yield self._register_call(key)
        if isinstance(result, NotFound) and self._ensure is not None:
            ensured = yield self._ensure_call()  # the registry lost its data: re-create
            if isinstance(ensured, RegistryError):
                result = ensured
            else:
                self._adopt_service(ensured)
                result = yield self._register_call(key)
        if isinstance(result, RegistryError):
            self._last_error = result
            code = code_name(result)
            return lambda now: lease.register_failed(now, code)
        assert isinstance(result, registry_pb2.RegisterInstanceResponse), type(result)
        stored, expires_at = result.instance_key, result.expires_at
        return lambda now: lease.registered(now, stored, expires_at)

    def _deregister_flow(self, key: str) -> Flow[Input]:
        lease = self._lease
        result = yield Unary(
            "DeregisterInstance",
            registry_pb2.DeregisterInstanceRequest(service_id=self._service_id, instance_key=key),
            timeout=min(DEREGISTER_TIMEOUT, self._client.config.default_timeout),
        )
        if isinstance(result, RegistryError):
            code = code_name(result)
            return lambda now: lease.deregister_failed(now, code)
        return lease.deregistered

    def _register_call(self, key: str) -> Unary:
        request = registry_pb2.RegisterInstanceRequest()
        request.CopyFrom(self._request)
        request.service_id = self._service_id
        request.instance_key = key
        return Unary("RegisterInstance", request)

    def _ensure_call(self) -> Unary:
        assert self._ensure is not None
        project, name = self._ensure
        return Unary("EnsureService", registry_pb2.EnsureServiceRequest(project=project, name=name))

    def _adopt_service(self, reply: Message) -> None:
        assert isinstance(reply, registry_pb2.EnsureServiceResponse), type(reply)
        assert self._ensure is not None
        if reply.service.id != self._service_id:
            project, name = self._ensure
            _log.warning(
                "service %s/%s ensured as id %s (was %s)",
                project,
                name,
                reply.service.id,
                self._service_id,
            )
        self._service_id = reply.service.id
