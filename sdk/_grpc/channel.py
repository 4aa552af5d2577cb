"""Channels to the registry, built from a :class:`~sdk.config.Config` (CONTRACT 4.2, G9, G18).

Rules (the reference SDK's address parsing, as far as grpcio allows):
    one address                        -> that address as a plain target
    several, all IPv4 literals         -> one channel, ``ipv4:a:1,b:2`` + ``round_robin``
    several, all bracketed IPv6        -> one channel, ``ipv6:[a]:1,[b]:2`` + ``round_robin``
    several, any name (or mixed kinds) -> one channel per address behind a
                                          :class:`FailoverChannel`
    tls None                           -> plaintext; else ``ssl_channel_credentials`` from
                                          the CA bundle and the optional client certificate,
                                          ``server_name`` as the target name override
    keepalive                          -> ``KeepalivePolicy.channel_options()`` on every channel

grpcio cannot register the reference SDK's ``static:///`` resolver from Python, and a
``dns:`` target names one host, hence the failover channel for host names: it sends each
call to the current channel and, for unary-request unary-response calls, moves on to the
next address when a call fails with UNAVAILABLE, within the call's own deadline. Streams
and stream-request calls cannot be replayed: they go to the current channel, which later
unary failures may move on.

One transport serves both roles of the reference SDK's two channels: auth calls use it
bare (no interceptors), business calls go through the interceptors on top of it. One
connection per node instead of two, and ``close()`` has exactly one thing to close, so no
auth channel can leak (G9).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from sdk._grpc.multicallable import WithCallUnaryUnary
from sdk.config import Config, TlsConfig

__all__ = [
    "FailoverChannel",
    "FailoverOrder",
    "TargetPlan",
    "Transport",
    "channel_credentials",
    "channel_options",
    "is_unavailable",
    "open_transport",
    "plan_target",
]

Options = tuple[tuple[str, Any], ...]
_T = TypeVar("_T")
_ROUND_ROBIN: Options = (("grpc.lb_policy_name", "round_robin"),)


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """How a list of addresses becomes channels.

    Attributes:
        targets: one gRPC target per channel to open.
        options: extra channel options (the ``round_robin`` LB policy for IP lists).
        failover: several channels, wrapped in a :class:`FailoverChannel`.
    """

    targets: tuple[str, ...]
    options: Options = ()

    @property
    def failover(self) -> bool:
        return len(self.targets) > 1


def _ip_kind(address: str) -> int | None:
    """4 or 6 for an IP literal ``host:port`` / ``[v6]:port``, else ``None``."""
    host = address.rpartition(":")[0]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None


def plan_target(addresses: Sequence[str]) -> TargetPlan:
    """Plan the channels for parsed registry addresses (see the module rules).

    Raises:
        ValueError: ``addresses`` is empty (``Config`` never lets that through).
    """
    if not addresses:
        raise ValueError("no registry address")
    if len(addresses) == 1:
        return TargetPlan((addresses[0],))
    kinds = {_ip_kind(address) for address in addresses}
    if kinds == {4}:
        return TargetPlan(("ipv4:" + ",".join(addresses),), _ROUND_ROBIN)
    if kinds == {6}:
        return TargetPlan(("ipv6:" + ",".join(addresses),), _ROUND_ROBIN)
    return TargetPlan(tuple(addresses))


def channel_credentials(tls: TlsConfig) -> tuple[grpc.ChannelCredentials, Options]:
    material = tls.load()
    credentials = grpc.ssl_channel_credentials(
        root_certificates=material.root_certificates,
        private_key=material.private_key,
        certificate_chain=material.certificate_chain,
    )
    options: Options = ()
    if tls.server_name is not None:
        options = (("grpc.ssl_target_name_override", tls.server_name),)
    return credentials, options


def _open(
    target: str, credentials: grpc.ChannelCredentials | None, options: Options
) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, credentials, options=list(options))


class Transport:
    """The registry connection of one client: a channel (plain or failover) and its close.

    Args:
        channel: what calls go through.
        plan: the targets it was built from.
    """

    __slots__ = ("_channel", "_closed", "_lock", "plan")

    def __init__(self, channel: grpc.Channel, plan: TargetPlan) -> None:
        self._channel = channel
        self.plan = plan
        self._closed = False
        self._lock = threading.Lock()

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close every channel; later calls do nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._channel.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"Transport(targets={list(self.plan.targets)!r}, {state})"


def channel_options(
    config: Config, plan: TargetPlan
) -> tuple[grpc.ChannelCredentials | None, Options]:
    """The credentials (``None``: plaintext) and options of every registry channel.

    Raises:
        ConfigError: a TLS file cannot be read.
    """
    options: Options = config.keepalive.channel_options() + plan.options
    credentials: grpc.ChannelCredentials | None = None
    if config.tls is not None:
        credentials, tls_options = channel_credentials(config.tls)
        options += tls_options
    return credentials, options


def open_transport(config: Config) -> Transport:
    """Open the channels for ``config`` (TLS, keepalive, multi-address plan).

    Raises:
        ConfigError: a TLS file cannot be read.
    """
    plan = plan_target(config.addresses)
    credentials, options = channel_options(config, plan)
    channels = [_open(target, credentials, options) for target in plan.targets]
    if len(channels) == 1:
        return Transport(channels[0], plan)
    return Transport(FailoverChannel(channels, plan.targets), plan)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a failed call's status is UNAVAILABLE (the node is down or refused it)."""
    code = getattr(exc, "code", None)
    return callable(code) and code() == grpc.StatusCode.UNAVAILABLE


class FailoverOrder:
    """Which of several registry channels a call tries, in what order (sync and asyncio).

    Calls start at :attr:`current`; a channel that answered UNAVAILABLE is moved past (once,
    even when several calls saw it fail); the first channel that answers becomes current.
    """

    __slots__ = ("_count", "_index", "_lock")

    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("failover needs at least one channel")
        self._count = count
        self._index = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        """Index of the channel new calls go to first."""
        return self._index

    def attempts(self) -> list[int]:
        """The channel indexes one call tries, current first, each once."""
        start = self._index
        return [(start + offset) % self._count for offset in range(self._count)]

    def moved_past(self, index: int) -> None:
        with self._lock:
            if self._index == index:  # another call may have moved it already
                self._index = (index + 1) % self._count

    def settled_on(self, index: int) -> None:
        self._index = index

    def may_retry(
        self, exc: BaseException, attempt: int, deadline: float | None, now: float
    ) -> bool:
        """After ``attempt`` (0-based) failed with ``exc``: try the next channel?"""
        last = attempt == self._count - 1
        out_of_time = deadline is not None and now >= deadline
        return is_unavailable(exc) and not last and not out_of_time


class FailoverChannel(grpc.Channel):
    """Several channels, one per address, used one at a time.

    Calls go to the current channel. A unary call that fails with UNAVAILABLE (the node is
    down or refused it) is sent to the next channel, each at most once, within the
    remaining deadline; the first channel that answers becomes current. Streams are not
    retried (their requests cannot be replayed). ``close()`` closes every channel.

    Args:
        channels: open channels, in preference order.
        targets: their targets, for the repr.
    """

    def __init__(self, channels: Sequence[grpc.Channel], targets: Sequence[str] = ()) -> None:
        if not channels:
            raise ValueError("FailoverChannel needs at least one channel")
        self._channels = tuple(channels)
        self._targets = tuple(targets)
        self._order = FailoverOrder(len(self._channels))

    @property
    def current(self) -> int:
        """Index of the channel new calls go to first."""
        return self._order.current

    def call_with_failover(
        self, attempt: Callable[[int, float | None], _T], timeout: float | None
    ) -> _T:
        """Run ``attempt(channel_index, timeout)`` on each channel in turn until one works."""
        order = self._order
        deadline = None if timeout is None else time.monotonic() + timeout
        for tried, index in enumerate(order.attempts()):
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            try:
                result = attempt(index, remaining)
            except grpc.RpcError as exc:
                if not order.may_retry(exc, tried, deadline, time.monotonic()):
                    raise
                order.moved_past(index)
                continue
            order.settled_on(index)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    # --- grpc.Channel ------------------------------------------------------------------

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        callables = [
            channel.unary_unary(  # type: ignore[call-arg]
                method,
                request_serializer,
                response_deserializer,
                _registered_method=_registered_method,
            )
            for channel in self._channels
        ]
        return _FailoverUnaryUnary(self, callables)

    def unary_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryStreamMultiCallable[Any, Any]:
        return _Current(  # type: ignore[return-value]
            self,
            [
                channel.unary_stream(  # type: ignore[call-arg]
                    method,
                    request_serializer,
                    response_deserializer,
                    _registered_method=_registered_method,
                )
                for channel in self._channels
            ],
        )

    def stream_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamUnaryMultiCallable[Any, Any]:
        return _Current(  # type: ignore[return-value]
            self,
            [
                channel.stream_unary(  # type: ignore[call-arg]
                    method,
                    request_serializer,
                    response_deserializer,
                    _registered_method=_registered_method,
                )
                for channel in self._channels
            ],
        )

    def stream_stream(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.StreamStreamMultiCallable[Any, Any]:
        return _Current(  # type: ignore[return-value]
            self,
            [
                channel.stream_stream(  # type: ignore[call-arg]
                    method,
                    request_serializer,
                    response_deserializer,
                    _registered_method=_registered_method,
                )
                for channel in self._channels
            ],
        )

    def subscribe(
        self, callback: Callable[[grpc.ChannelConnectivity], None], try_to_connect: bool = False
    ) -> None:
        self._channels[self.current].subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Callable[[grpc.ChannelConnectivity], None]) -> None:
        for channel in self._channels:
            channel.unsubscribe(callback)

    def close(self) -> None:
        for channel in self._channels:
            channel.close()

    def __repr__(self) -> str:
        return f"FailoverChannel(targets={list(self._targets)!r}, current={self.current})"


class _FailoverUnaryUnary(WithCallUnaryUnary):
    def __init__(self, owner: FailoverChannel, callables: list[Any]) -> None:
        self._owner = owner
        self._callables = callables

    def with_call(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        def attempt(index: int, remaining: float | None) -> Any:
            return self._callables[index].with_call(
                request, remaining, metadata, credentials, wait_for_ready, compression
            )

        return self._owner.call_with_failover(attempt, timeout)

    def future(
        self,
        request: Any,
        timeout: float | None = None,
        metadata: Any = None,
        credentials: Any = None,
        wait_for_ready: bool | None = None,
        compression: Any = None,
    ) -> Any:
        # A future cannot be re-sent elsewhere without blocking: no failover here.
        return self._callables[self._owner.current].future(
            request, timeout, metadata, credentials, wait_for_ready, compression
        )


class _Current:
    """A stream multicallable: every call (and attribute) goes to the current channel's."""

    def __init__(self, owner: FailoverChannel, callables: list[Any]) -> None:
        self._owner = owner
        self._callables = callables

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._callables[self._owner.current](*args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # with_call / future of stream-unary
        return getattr(self._callables[self._owner.current], name)
