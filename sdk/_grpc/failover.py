"""Failover across registry nodes named by host: one channel per address, used in turn.

grpcio cannot register the reference SDK's ``static:///`` resolver from Python, and a
``dns:`` target names one host. :class:`FailoverChannel` sends each call to the current
channel and, for unary-request unary-response calls, moves on to the next address when a
call fails with UNAVAILABLE, within the call's own deadline. Streams and stream-request
calls cannot be replayed: they go to the current channel, which later unary failures may
move on. :class:`FailoverOrder` is the order itself, shared with the asyncio channel.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from sdk._grpc.multicallable import WithCallUnaryUnary

__all__ = ["FailoverChannel", "FailoverOrder", "is_unavailable"]

_T = TypeVar("_T")


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

    def _each(self, kind: str, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """The ``kind`` multicallable of ``method`` on every channel, in order."""
        return [getattr(channel, kind)(method, *args, **kwargs) for channel in self._channels]

    def unary_unary(
        self,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool = False,
    ) -> grpc.UnaryUnaryMultiCallable[Any, Any]:
        callables = self._each(
            "unary_unary",
            method,
            request_serializer,
            response_deserializer,
            _registered_method=_registered_method,
        )
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
            self._each(
                "unary_stream",
                method,
                request_serializer,
                response_deserializer,
                _registered_method=_registered_method,
            ),
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
            self._each(
                "stream_unary",
                method,
                request_serializer,
                response_deserializer,
                _registered_method=_registered_method,
            ),
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
            self._each(
                "stream_stream",
                method,
                request_serializer,
                response_deserializer,
                _registered_method=_registered_method,
            ),
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
