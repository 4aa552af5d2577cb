"""What a discovery channel decides, shared by the sync and the asyncio channel (DESIGN 4).

``sdk._grpc.discovery_channel`` (``grpc.Channel``) and ``sdk.aio._discovery_channel``
(``grpc.aio.Channel``) follow these rules; they only make and await the calls.

Rules:
    every call          pick an instance (round-robin, cooldowns skipped), dial
                        ``instance.grpc_address(network)`` through the shared cache
    unary-unary call    UNAVAILABLE (refused, down, shedding load) -> report the failure, try
                        the next pick, at most ``max_attempts`` instances within the call's
                        deadline (``default_timeout`` when the call sets none); OK -> report
                        success; DEADLINE_EXCEEDED -> report the failure, raise (no time
                        left); any other status is the application's answer: raise, report
                        nothing
    streaming calls     one pick, no failover (the request cannot be replayed); no report
    (and sync futures)  (futures report their outcome when done)
    no gRPC address     the instance is reported failed; a unary call tries the next pick,
                        a stream raises ``Unavailable``
    nothing to pick     the discovery error (``NoInstances``, ...) is raised; after an attempt
                        already failed, that attempt's error is raised instead
    instance channels   one per (address, credentials), plaintext unless credentials are
                        given, no registry token; closed when no listed instance uses the
                        address any more, and all on ``close()`` of the cache (client close)

grpcio cannot plug a custom resolver or load balancer from Python, hence this layer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

import grpc

from sdk.errors import DeadlineExceeded, Unavailable

if TYPE_CHECKING:
    from sdk.discovery import Pick
    from sdk.models import Instance

__all__ = [
    "CLOSED",
    "ChannelBook",
    "Failover",
    "check_max_attempts",
    "code_of",
    "instance_address",
]

C = TypeVar("C")
Key = tuple[str, str]
Identity = tuple[int, str]
User = tuple[Key, Identity]
ChannelKey = tuple[str, "grpc.ChannelCredentials | None"]
Opener = Callable[[str, "grpc.ChannelCredentials | None"], C]
CLOSED = "Cannot invoke RPC on closed channel!"  # grpcio's own words for a closed channel


def code_of(exc: BaseException) -> grpc.StatusCode | None:
    """The status code of a failed call (``None`` when ``exc`` carries none)."""
    code = getattr(exc, "code", None)
    value = code() if callable(code) else None
    return value if isinstance(value, grpc.StatusCode) else None


def check_max_attempts(max_attempts: int) -> int:
    """``max_attempts`` if it is an integer >= 1, else ``ValueError``."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
    return max_attempts


def instance_address(pick: Pick, service: Key, network: str | None) -> str:
    """The gRPC address to dial for ``pick``.

    Raises:
        Unavailable: the instance has no gRPC address for ``network`` (it is reported
            failed first, so the next pick skips it).
    """
    address = pick.instance.grpc_address(network)
    if address is None:
        error = Unavailable(
            f"instance {pick.instance.instance_key!r} of {service[0]}/{service[1]} "
            f"has no gRPC address (network={network!r})"
        )
        pick.failed(error)
        raise error
    return address


class Failover:
    """The attempts of one unary-unary call (the module rules), without the calls.

    The shell loops: ``remaining = next_attempt()`` (``None``: stop, raise
    :meth:`exhausted`), pick with that timeout, dial, call with :meth:`call_timeout`,
    and hands a failed call to :meth:`retry_after`.
    """

    __slots__ = ("_deadline", "_left", "_service", "last")

    def __init__(
        self, service: Key, max_attempts: int, timeout: float | None, default_timeout: float
    ) -> None:
        budget = timeout if timeout is not None else default_timeout
        self._deadline = time.monotonic() + budget
        self._left = max_attempts
        self._service = service
        self.last: BaseException | None = None  # the latest failed attempt's error

    def next_attempt(self) -> float | None:
        """Seconds left for one more attempt; ``None`` when attempts or time ran out."""
        if self._left <= 0:
            return None
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return None
        self._left -= 1
        return remaining

    def call_timeout(self) -> float:
        """The deadline of the call about to be made (never 0: gRPC needs a positive one)."""
        return max(self._deadline - time.monotonic(), 0.001)

    def raise_earlier_failure(self) -> None:
        """Nothing left to pick: if an attempt failed, raise its error (we cooled it down)."""
        if self.last is not None:
            raise self.last from None

    def retry_after(self, pick: Pick, exc: BaseException) -> bool:
        """Report a failed call to ``pick``'s instance; ``True``: try another instance."""
        code = code_of(exc)
        if code is grpc.StatusCode.UNAVAILABLE:
            pick.failed(exc)
            self.last = exc
            return True
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            pick.failed(exc)
        return False

    def exhausted(self) -> BaseException:
        """What to raise when no attempt answered: the last failure, or out of time."""
        if self.last is not None:
            return self.last
        return DeadlineExceeded(f"no time left to call {self._service[0]}/{self._service[1]}")


class ChannelBook(Generic[C]):
    """Open channels to instances, keyed by (address, credentials), with their users.

    The bookkeeping only: methods return the channels to close, and the sync or asyncio
    cache closes them its way. Shared by every discovery channel of one client.

    Args:
        open_channel: ``open_channel(address, credentials)`` makes a channel
            (``credentials`` ``None``: plaintext).
    """

    def __init__(self, open_channel: Opener[C]) -> None:
        self._open = open_channel
        self._lock = threading.Lock()
        self._channels: dict[ChannelKey, C] = {}
        self._users: dict[ChannelKey, set[User]] = {}
        self._closed = False

    def checkout(
        self,
        service: Key,
        identity: Identity,
        address: str,
        credentials: grpc.ChannelCredentials | None,
    ) -> tuple[C, list[C]]:
        """The channel to ``address`` for ``identity`` of ``service``, opened on first use.

        Returns:
            The channel, and the channels to close: the instance moved to this address,
            and nobody uses its old one any more.

        Raises:
            ValueError: the cache was closed.
        """
        key: ChannelKey = (address, credentials)
        user = (service, identity)
        stale: list[C] = []
        with self._lock:
            if self._closed:
                raise ValueError(CLOSED)
            channel = self._channels.get(key)
            if channel is None:
                channel = self._channels[key] = self._open(address, credentials)
            users = self._users.setdefault(key, set())
            if user not in users:
                users.add(user)
                for other, others in list(self._users.items()):
                    if other != key and user in others:
                        others.discard(user)
                        if not others:
                            stale.append(self._drop(other))
        return channel, stale

    def _drop(self, key: ChannelKey) -> C:
        del self._users[key]
        return self._channels.pop(key)

    def release(self, service: Key, instances: Iterable[Instance]) -> list[C]:
        """``service`` now lists ``instances``; returns the channels only vanished ones used."""
        live = {(service, i.identity) for i in instances}
        closing: list[C] = []
        with self._lock:
            for key, users in list(self._users.items()):
                gone = {u for u in users if u[0] == service and u not in live}
                if gone:
                    users -= gone
                    if not users:
                        closing.append(self._drop(key))
        return closing

    def addresses(self) -> list[str]:
        """Addresses with an open channel (for tests and debugging)."""
        with self._lock:
            return sorted(address for address, _ in self._channels)

    def close_all(self) -> list[C]:
        """Mark the cache closed (later checkouts raise ``ValueError``); returns every channel."""
        with self._lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._users.clear()
        return channels

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}(channels={len(self._channels)}, {state})"
