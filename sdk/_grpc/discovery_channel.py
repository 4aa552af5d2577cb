"""A ``grpc.Channel`` over discovered instances, and the per-instance channel cache (DESIGN 4).

Rules:
    every call          pick an instance (round-robin, cooldowns skipped), dial
                        ``instance.grpc_address(network)`` through the shared cache
    unary-unary call    UNAVAILABLE (refused, down, shedding load) -> report the failure, try
                        the next pick, at most ``max_attempts`` instances within the call's
                        deadline (``default_timeout`` when the call sets none); OK -> report
                        success; DEADLINE_EXCEEDED -> report the failure, raise (no time
                        left); any other status is the application's answer: raise, report
                        nothing
    ``future()`` and    one pick, no failover (the request cannot be replayed); futures report
    streaming calls     their outcome when done, streams report nothing
    nothing to pick     the discovery error (``NoInstances``, ...) is raised; after an attempt
                        already failed, that attempt's ``RpcError`` is raised instead
    instance channels   one per (address, credentials), plaintext unless credentials are
                        given, no registry token; closed when no listed instance uses the
                        address any more, and all on ``close()`` of the cache (client close)

grpcio cannot plug a custom resolver or load balancer from Python, hence this layer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from sdk._grpc.multicallable import WithCallUnaryUnary
from sdk.config import Config
from sdk.errors import DeadlineExceeded, NoHealthyInstances, Unavailable

if TYPE_CHECKING:
    from sdk.discovery import Pick
    from sdk.models import Instance

__all__ = ["DiscoveryChannel", "InstanceChannels"]

_T = TypeVar("_T")
Key = tuple[str, str]
Identity = tuple[int, str]
User = tuple[Key, Identity]
ChannelKey = tuple[str, "grpc.ChannelCredentials | None"]
PickFn = Callable[..., "Pick"]
_CLOSED = "Cannot invoke RPC on closed channel!"


def _code(exc: BaseException) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else None


class InstanceChannels:
    """Open channels to instances, shared by every discovery channel of one client.

    Args:
        config: ``keepalive`` options are applied to every instance channel.
    """

    def __init__(self, config: Config) -> None:
        self._options = list(config.keepalive.channel_options())
        self._lock = threading.Lock()
        self._channels: dict[ChannelKey, grpc.Channel] = {}
        self._users: dict[ChannelKey, set[User]] = {}
        self._closed = False

    def get(
        self,
        service: Key,
        identity: Identity,
        address: str,
        credentials: grpc.ChannelCredentials | None,
    ) -> grpc.Channel:
        """The channel to ``address`` for ``identity`` of ``service``, opened on first use."""
        key: ChannelKey = (address, credentials)
        user = (service, identity)
        stale: list[grpc.Channel] = []
        with self._lock:
            if self._closed:
                raise ValueError(_CLOSED)
            channel = self._channels.get(key)
            if channel is None:
                if credentials is None:
                    channel = grpc.insecure_channel(address, options=self._options)
                else:
                    channel = grpc.secure_channel(address, credentials, options=self._options)
                self._channels[key] = channel
            users = self._users.setdefault(key, set())
            if user not in users:
                users.add(user)
                # The instance moved to a new address: release the old one.
                for other, others in list(self._users.items()):
                    if other != key and user in others:
                        others.discard(user)
                        if not others:
                            stale.append(self._drop(other))
        for old in stale:
            old.close()
        return channel

    def _drop(self, key: ChannelKey) -> grpc.Channel:
        del self._users[key]
        return self._channels.pop(key)

    def retain(self, service: Key, instances: Iterable[Instance]) -> None:
        """``service`` now lists ``instances``: close channels only vanished ones used."""
        live = {(service, i.identity) for i in instances}
        closing: list[grpc.Channel] = []
        with self._lock:
            for key, users in list(self._users.items()):
                gone = {u for u in users if u[0] == service and u not in live}
                if gone:
                    users -= gone
                    if not users:
                        closing.append(self._drop(key))
        for channel in closing:
            channel.close()

    def addresses(self) -> list[str]:
        """Addresses with an open channel (for tests and debugging)."""
        with self._lock:
            return sorted(address for address, _ in self._channels)

    def close(self) -> None:
        """Close every channel; later ``get`` calls raise ``ValueError``."""
        with self._lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._users.clear()
        for channel in channels:
            channel.close()


class DiscoveryChannel(grpc.Channel):
    """Calls to discovered instances of one service (see the module rules).

    Built by :meth:`sdk.discovery.Discovery.channel`. ``close()`` closes only this view
    (further calls raise ``ValueError``); the instance channels belong to the client.
    ``subscribe`` accepts callbacks but reports nothing: connectivity is per instance.
    """

    def __init__(
        self,
        pick: PickFn,
        channels: InstanceChannels,
        service: Key,
        *,
        network: str | None,
        credentials: grpc.ChannelCredentials | None,
        max_attempts: int,
        default_timeout: float,
    ) -> None:
        self._pick = pick
        self._channels = channels
        self._service = service
        self._network = network
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._default_timeout = default_timeout
        self._closed = False

    def _dial(self, pick: Pick) -> grpc.Channel:
        if self._closed:
            raise ValueError(_CLOSED)
        address = pick.instance.grpc_address(self._network)
        if address is None:
            error = Unavailable(
                f"instance {pick.instance.instance_key!r} of {self._service[0]}/"
                f"{self._service[1]} has no gRPC address (network={self._network!r})"
            )
            pick.failed(error)
            raise error
        return self._channels.get(self._service, pick.instance.identity, address, self._credentials)

    def pick_one(self, timeout: float | None = None) -> tuple[Pick, grpc.Channel]:
        """Pick an instance and its channel (no failover)."""
        pick = self._pick(*self._service, timeout=timeout)
        return pick, self._dial(pick)

    def invoke(self, attempt: Callable[[grpc.Channel, float], _T], timeout: float | None) -> _T:
        """Run ``attempt(channel, remaining)`` on picked instances until one answers."""
        if self._closed:
            raise ValueError(_CLOSED)
        budget = timeout if timeout is not None else self._default_timeout
        deadline = time.monotonic() + budget
        last: BaseException | None = None
        for _ in range(self._max_attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                pick = self._pick(*self._service, timeout=remaining)
            except NoHealthyInstances:
                if last is not None:  # we cooled them down ourselves: the real cause
                    raise last from None
                raise
            try:
                channel = self._dial(pick)
            except Unavailable as exc:
                last = exc
                continue
            try:
                result = attempt(channel, max(deadline - time.monotonic(), 0.001))
            except grpc.RpcError as exc:
                code = _code(exc)
                if code is grpc.StatusCode.UNAVAILABLE:
                    pick.failed(exc)
                    last = exc
                    continue
                if code is grpc.StatusCode.DEADLINE_EXCEEDED:
                    pick.failed(exc)
                raise
            pick.succeeded()
            return result
        if last is not None:
            raise last
        raise DeadlineExceeded(f"no time left to call {self._service[0]}/{self._service[1]}")

    # --- grpc.Channel ------------------------------------------------------------------

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        return _UnaryUnary(self, (method, request_serializer, response_deserializer))

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryStreamMultiCallable[Any, Any]:
        return _Picked(self, "unary_stream", (method, request_serializer, response_deserializer))  # type: ignore[return-value]

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamUnaryMultiCallable[Any, Any]:
        return _Picked(self, "stream_unary", (method, request_serializer, response_deserializer))  # type: ignore[return-value]

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamStreamMultiCallable[Any, Any]:
        return _Picked(self, "stream_stream", (method, request_serializer, response_deserializer))  # type: ignore[return-value]

    def subscribe(
        self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False
    ) -> None:
        """Accepted for compatibility; no connectivity events are reported."""

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        """Accepted for compatibility."""

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> DiscoveryChannel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"DiscoveryChannel({self._service[0]}/{self._service[1]}, {state})"


Spec = tuple[str, Any, Any]


def _multicallable(channel: grpc.Channel, kind: str, spec: Spec) -> Any:
    method, serializer, deserializer = spec
    return getattr(channel, kind)(method, serializer, deserializer, _registered_method=False)


class _UnaryUnary(WithCallUnaryUnary):
    def __init__(self, owner: DiscoveryChannel, spec: Spec) -> None:
        self._owner = owner
        self._spec = spec

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        def attempt(channel: grpc.Channel, remaining: float) -> Any:
            return _multicallable(channel, "unary_unary", self._spec).with_call(
                request, remaining, metadata, credentials, wait_for_ready, compression
            )

        return self._owner.invoke(attempt, timeout)

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        pick, channel = self._owner.pick_one(timeout)
        future = _multicallable(channel, "unary_unary", self._spec).future(
            request, timeout, metadata, credentials, wait_for_ready, compression
        )

        def done(call: Any) -> None:
            code = _code(call)
            if code is grpc.StatusCode.OK:
                pick.succeeded()
            elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                pick.failed()

        future.add_done_callback(done)
        return future


class _Picked:
    """A streaming multicallable: each call goes to a freshly picked instance."""

    def __init__(self, owner: DiscoveryChannel, kind: str, spec: Spec) -> None:
        self._owner = owner
        self._kind = kind
        self._spec = spec

    def _target(self, timeout: Any) -> Any:
        bound = timeout if isinstance(timeout, int | float) else None
        _pick, channel = self._owner.pick_one(bound)
        return _multicallable(channel, self._kind, self._spec)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target(kwargs.get("timeout"))(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # with_call / future of stream-unary
        return getattr(self._target(None), name)
