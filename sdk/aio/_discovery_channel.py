"""A ``grpc.aio.Channel`` over discovered instances, and its per-instance channel cache.

The asyncio twin of ``sdk._grpc.discovery_channel``: the rules (which instance, when to
fail over, what is reported, when instance channels close) are
:mod:`sdk._grpc.discovery_calls`, shared with it; this module awaits the calls.

What the asyncio shape adds:
    unary-unary call    a coroutine (``await stub.Method(request)``), like the client's
                        business channel (``sdk.aio._channel``): it fails over, so there is
                        no single ``grpc.aio`` call object to hand out
    streaming calls     the instance is picked when the call is made if the discovery cache
                        is warm (the real ``grpc.aio`` call is returned), else when the call
                        is first used (a ``PendingCall``); discovery errors (``NoInstances``,
                        an instance without a gRPC address, ...) are raised at first use
    closing             an instance channel that is no longer used is closed in a task;
                        ``close()`` of the cache awaits those and closes the rest
    a closed view       calls raise ``ValueError`` (as the sync channel's), when awaited
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio

from sdk._grpc.discovery_calls import CLOSED, ChannelBook, Failover, instance_address
from sdk.aio._channel import closed_under, open_channel
from sdk.aio._pending_call import PendingCall
from sdk.config import Config
from sdk.errors import NoHealthyInstances, RegistryError, Unavailable

if TYPE_CHECKING:
    from sdk.discovery import Pick
    from sdk.models import Instance

__all__ = ["AsyncDiscoveryChannel", "AsyncInstanceChannels"]

_T = TypeVar("_T")
Key = tuple[str, str]
Identity = tuple[int, str]
Spec = tuple[str, Any, Any]  # method, request serializer, response deserializer
PickNow = Callable[[Key], "Pick | None"]
PickLater = Callable[..., Awaitable["Pick"]]


class AsyncInstanceChannels(ChannelBook[grpc.aio.Channel]):
    """Open ``grpc.aio`` channels to instances, shared by every discovery channel of a client.

    Args:
        config: ``keepalive`` options are applied to every instance channel.

    Use from the client's event loop (``grpc.aio`` channels belong to one loop).
    """

    def __init__(self, config: Config) -> None:
        options = list(config.keepalive.channel_options())

        def dial(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
            return open_channel(address, credentials, options)

        super().__init__(dial)
        # A vanished instance's channel is closed after the calls on it had their time.
        self._grace = config.default_timeout
        self._closing: dict[asyncio.Task[None], grpc.aio.Channel] = {}

    def get(
        self,
        service: Key,
        identity: Identity,
        address: str,
        credentials: grpc.ChannelCredentials | None,
    ) -> grpc.aio.Channel:
        """The channel to ``address`` for ``identity`` of ``service``, opened on first use."""
        channel, stale = self.checkout(service, identity, address, credentials)
        self._close_later(stale)
        return channel

    def retain(self, service: Key, instances: Iterable[Instance]) -> None:
        """``service`` now lists ``instances``: close channels only vanished ones used."""
        self._close_later(self.release(service, instances))

    async def close(self) -> None:
        """Close every channel now (awaited); later ``get`` calls raise ``ValueError``."""
        channels = list(self.close_all())
        for task, channel in list(self._closing.items()):
            task.cancel()  # the client is closing: no more grace for vanished instances
            channels.append(channel)
        await asyncio.gather(*(channel.close() for channel in channels))

    def _close_later(self, channels: Iterable[grpc.aio.Channel]) -> None:
        for channel in channels:
            # With a grace period: closing cancels the calls still on the channel, and a
            # refresh that drops the instance must not cancel a call already sent to it.
            task = asyncio.get_running_loop().create_task(channel.close(self._grace))
            self._closing[task] = channel
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._closing.pop(task, None)


class AsyncDiscoveryChannel(grpc.aio.Channel):
    """Calls to discovered instances of one service (see the module rules).

    Built by :meth:`sdk.aio.discovery.AsyncDiscovery.channel`. ``await close()`` closes only
    this view; the instance channels belong to the client. It has no connection of its
    own: ``get_state()`` is ``IDLE`` until closed (then ``SHUTDOWN``), and
    ``channel_ready()`` resolves the service (raising what discovery raises).
    """

    def __init__(
        self,
        pick_now: PickNow,
        pick: PickLater,
        resolve: Callable[..., Awaitable[object]],
        channels: AsyncInstanceChannels,
        service: Key,
        *,
        network: str | None,
        credentials: grpc.ChannelCredentials | None,
        max_attempts: int,
        default_timeout: float,
    ) -> None:
        self._pick_now = pick_now
        self._pick = pick
        self._resolve = resolve
        self._channels = channels
        self._service = service
        self._network = network
        self._credentials = credentials
        self._max_attempts = max_attempts
        self._default_timeout = default_timeout
        self._closed = False
        self._shutdown: asyncio.Event | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def dial(self, pick: Pick) -> grpc.aio.Channel:
        """The instance channel for ``pick`` (``Unavailable`` when it has no gRPC address)."""
        if self._closed:
            raise ValueError(CLOSED)
        address = instance_address(pick, self._service, self._network)
        return self._channels.get(self._service, pick.instance.identity, address, self._credentials)

    def pick_now(self) -> Pick | None:
        """A pick from the warm cache; ``None`` when resolving is needed (no IO)."""
        return self._pick_now(self._service)

    async def pick_one(self, timeout: float | None = None) -> tuple[Pick, grpc.aio.Channel]:
        """Pick an instance and its channel (no failover)."""
        if self._closed:
            raise ValueError(CLOSED)
        pick = self._pick_now(self._service)
        if pick is None:
            pick = await self._pick(*self._service, timeout=timeout)
        return pick, self.dial(pick)

    async def invoke(
        self, attempt: Callable[[grpc.aio.Channel, float], Awaitable[_T]], timeout: float | None
    ) -> _T:
        """Await ``attempt(channel, remaining)`` on picked instances until one answers."""
        if self._closed:
            raise ValueError(CLOSED)
        service = self._service
        failover = Failover(service, self._max_attempts, timeout, self._default_timeout)
        while (remaining := failover.next_attempt()) is not None:
            try:
                pick = self._pick_now(service)
                if pick is None:
                    pick = await self._pick(*service, timeout=remaining)
            except NoHealthyInstances:
                failover.raise_earlier_failure()
                raise
            try:
                channel = self.dial(pick)
            except Unavailable as exc:
                failover.last = exc
                continue
            try:
                result = await attempt(channel, failover.call_timeout())
            except grpc.RpcError as exc:
                if failover.retry_after(pick, exc):
                    continue
                raise
            except asyncio.CancelledError:
                closed = closed_under(None)  # the client closed the instance channels
                if closed is None:
                    raise  # this task's own cancellation: neither failed over nor reported
                raise closed from None
            pick.succeeded()
            return result
        raise failover.exhausted()

    # --- grpc.aio.Channel ---------------------------------------------------------------

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return _UnaryUnary(self, (method, request_serializer, response_deserializer))

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return _Stream(self, "unary_stream", (method, request_serializer, response_deserializer))

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return _Stream(self, "stream_unary", (method, request_serializer, response_deserializer))

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> Any:
        return _Stream(self, "stream_stream", (method, request_serializer, response_deserializer))

    async def close(self, grace: float | None = None) -> None:
        """Close this view (idempotent); calls in flight on instance channels go on."""
        self._closed = True
        if self._shutdown is not None:
            self._shutdown.set()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        if self._closed:
            return grpc.ChannelConnectivity.SHUTDOWN
        return grpc.ChannelConnectivity.IDLE

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        """Return once the state differs from ``last_observed_state`` (it changes on close)."""
        if self.get_state() is not last_observed_state:
            return
        if self._shutdown is None:
            self._shutdown = asyncio.Event()
        await self._shutdown.wait()

    async def channel_ready(self) -> None:
        """Resolve the service: discovery errors are raised, nothing is dialled."""
        if self._closed:
            raise ValueError(CLOSED)
        await self._resolve(*self._service)

    async def __aenter__(self) -> AsyncDiscoveryChannel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"AsyncDiscoveryChannel({self._service[0]}/{self._service[1]}, {state})"


def _multicallable(channel: grpc.aio.Channel, kind: str, spec: Spec) -> Any:
    method, serializer, deserializer = spec
    return getattr(channel, kind)(method, serializer, deserializer)


class _UnaryUnary:
    """A unary-unary multicallable: each call is a coroutine with failover."""

    __slots__ = ("_owner", "_spec")

    def __init__(self, owner: AsyncDiscoveryChannel, spec: Spec) -> None:
        self._owner = owner
        self._spec = spec

    async def __call__(
        self,
        request: Any,
        *,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        spec = self._spec

        async def attempt(channel: grpc.aio.Channel, remaining: float) -> Any:
            return await _multicallable(channel, "unary_unary", spec)(
                request,
                timeout=remaining,
                metadata=metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            )

        return await self._owner.invoke(attempt, timeout)


class _Stream:
    """A streaming multicallable: each call goes to one picked instance (module rules)."""

    __slots__ = ("_kind", "_owner", "_spec")

    def __init__(self, owner: AsyncDiscoveryChannel, kind: str, spec: Spec) -> None:
        self._owner = owner
        self._kind = kind
        self._spec = spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner
        try:
            pick = None if owner.closed else owner.pick_now()
            if pick is not None:  # the warm cache: the real call, opened now
                return _multicallable(owner.dial(pick), self._kind, self._spec)(*args, **kwargs)
        except (RegistryError, ValueError) as exc:
            return PendingCall(_raiser(exc))
        return PendingCall(lambda: self._open(args, kwargs))

    async def _open(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        timeout = kwargs.get("timeout")
        started = time.monotonic()
        _pick, channel = await self._owner.pick_one(timeout)
        if timeout is not None:
            kwargs = {**kwargs, "timeout": max(timeout - (time.monotonic() - started), 0.001)}
        return _multicallable(channel, self._kind, self._spec)(*args, **kwargs)


def _raiser(error: BaseException) -> Callable[[], Awaitable[Any]]:
    async def fail() -> Any:
        raise error

    return fail
