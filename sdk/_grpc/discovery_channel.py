"""A ``grpc.Channel`` over discovered instances, and the per-instance channel cache (DESIGN 4).

The rules (which instance, when to fail over, what is reported, when instance channels
close) are in :mod:`sdk._grpc.discovery_calls`, shared with the asyncio channel
(``sdk.aio._discovery_channel``); this module makes the blocking calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import grpc

from sdk._grpc.discovery_calls import (
    CLOSED,
    ChannelBook,
    Failover,
    code_of,
    instance_address,
)
from sdk._grpc.multicallable import WithCallUnaryUnary
from sdk.config import Config
from sdk.errors import NoHealthyInstances, Unavailable

if TYPE_CHECKING:
    from sdk.discovery import Pick
    from sdk.models import Instance

__all__ = ["DiscoveryChannel", "InstanceChannels"]

_T = TypeVar("_T")
Key = tuple[str, str]
Identity = tuple[int, str]
PickFn = Callable[..., "Pick"]


def _opener(options: Sequence[tuple[str, Any]]) -> Callable[..., grpc.Channel]:
    def open_channel(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.Channel:
        if credentials is None:
            return grpc.insecure_channel(address, options=list(options))
        return grpc.secure_channel(address, credentials, options=list(options))

    return open_channel


def _close(channels: Iterable[grpc.Channel]) -> None:
    for channel in channels:
        channel.close()


class InstanceChannels(ChannelBook[grpc.Channel]):
    """Open sync channels to instances, shared by every discovery channel of one client.

    Args:
        config: ``keepalive`` options are applied to every instance channel.
    """

    def __init__(self, config: Config) -> None:
        super().__init__(_opener(list(config.keepalive.channel_options())))

    def get(
        self,
        service: Key,
        identity: Identity,
        address: str,
        credentials: grpc.ChannelCredentials | None,
    ) -> grpc.Channel:
        """The channel to ``address`` for ``identity`` of ``service``, opened on first use."""
        channel, stale = self.checkout(service, identity, address, credentials)
        _close(stale)
        return channel

    def retain(self, service: Key, instances: Iterable[Instance]) -> None:
        """``service`` now lists ``instances``: close channels only vanished ones used."""
        _close(self.release(service, instances))

    def close(self) -> None:
        """Close every channel; later ``get`` calls raise ``ValueError``."""
        _close(self.close_all())


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
            raise ValueError(CLOSED)
        address = instance_address(pick, self._service, self._network)
        return self._channels.get(self._service, pick.instance.identity, address, self._credentials)

    def pick_one(self, timeout: float | None = None) -> tuple[Pick, grpc.Channel]:
        """Pick an instance and its channel (no failover)."""
        pick = self._pick(*self._service, timeout=timeout)
        return pick, self._dial(pick)

    def invoke(self, attempt: Callable[[grpc.Channel, float], _T], timeout: float | None) -> _T:
        """Run ``attempt(channel, remaining)`` on picked instances until one answers."""
        if self._closed:
            raise ValueError(CLOSED)
        failover = Failover(self._service, self._max_attempts, timeout, self._default_timeout)
        while (remaining := failover.next_attempt()) is not None:
            try:
                pick = self._pick(*self._service, timeout=remaining)
            except NoHealthyInstances:
                failover.raise_earlier_failure()
                raise
            try:
                channel = self._dial(pick)
            except Unavailable as exc:
                failover.last = exc
                continue
            try:
                result = attempt(channel, failover.call_timeout())
            except grpc.RpcError as exc:
                if failover.retry_after(pick, exc):
                    continue
                raise
            pick.succeeded()
            return result
        raise failover.exhausted()

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
            code = code_of(call)
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
