"""Discovery for asyncio: the twin of :class:`sdk.discovery.Discovery` (CONTRACT 4.6, G10, G11).

Exposed as ``client.discovery`` of an :class:`~sdk.aio.AsyncClient`::

    pick = await client.discovery.pick("demo", "echo")
    try:
        reply = await call(pick.instance.grpc_address())
    except Exception as exc:
        pick.failed(exc)
        raise
    pick.succeeded()

    stub = EchoServiceStub(client.discovery.channel("demo", "echo"))  # does all of that
    reply = await stub.Echo(request)

The rules are :mod:`sdk.discovery`'s, and so are the decisions (``sdk._discovery_state``,
shared with the sync class): the cache, stale serving, ``ServiceNotFound`` never served
stale, round-robin that survives refreshes, cooldowns and their pruning, the ``Pick``
values. Only the waiting differs:

    refresh       one task per service (a flight), started by the first caller that needs
                  it; every caller, that one included, awaits the flight within its own
                  timeout (real seconds), so a caller that is cancelled or times out never
                  cancels the refresh the others wait for, and all of them get its outcome
    its deadline  ``ListServices`` gets the client's ``default_timeout``, or the timeout of
                  the call that started the flight if that is longer: the flight belongs to
                  no single caller
    cancellation  ``CancelledError`` is raised, never caught and retried; a flight
                  cancelled by :meth:`AsyncDiscovery.close` is abandoned (nothing cached)
                  and its waiters get ``ClientClosed``, as any later refresh does
    close         cancels the flights and closes every instance channel, awaited

Use an ``AsyncDiscovery`` from its client's event loop only; ``Pick`` reports may come
from any thread.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import TYPE_CHECKING

import grpc
import grpc.aio

from sdk._discovery_state import LIST_SERVICES, DiscoveryState, Key, RefreshRole, Snapshot
from sdk._grpc.discovery_calls import check_max_attempts
from sdk.aio._discovery_channel import AsyncDiscoveryChannel, AsyncInstanceChannels
from sdk.clock import Clock
from sdk.config import Config
from sdk.discovery import Pick
from sdk.errors import ClientClosed, DeadlineExceeded, ServiceNotFound
from sdk.models import Instance, ServiceView

if TYPE_CHECKING:
    from sdk.aio.registry import AsyncRegistryClient

__all__ = ["AsyncDiscovery"]


class AsyncDiscovery:
    """Resolve services through a 30 s cache and balance calls over their instances.

    Args:
        registry: the async client's registry client (``ListServices`` goes through it).
        config: ``env`` filters the instances; ``discovery`` sets the cache and cooldowns.
        clock: the client's clock (cache ages and cooldowns read ``clock.monotonic()``).

    ``await close()`` (run by ``AsyncClient.close``) closes the per-instance channels.
    """

    def __init__(self, registry: AsyncRegistryClient, config: Config, clock: Clock) -> None:
        self._registry = registry
        self._config = config
        self._clock = clock
        self._state = DiscoveryState(config, clock)
        self._channels = AsyncInstanceChannels(config)
        self._flights: dict[Key, asyncio.Task[Snapshot]] = {}
        self._closed = False

    # --- resolve ------------------------------------------------------------

    async def resolve(
        self, project: str, name: str, *, timeout: float | None = None
    ) -> ServiceView:
        """The service ``project/name`` with its online instances in ``config.env``.

        Args:
            timeout: bound in real seconds for waiting on the refresh (this call's or a
                shared one); ``None`` is the client's default deadline.

        Raises:
            ServiceNotFound: the registry has no such service.
            DeadlineExceeded: no answer within ``timeout`` (the refresh goes on for others).
            RegistryError: the registry failed and no entry within ``max_stale`` exists.
        """
        return (await self._resolve((project, name), timeout)).view

    async def _resolve(self, key: Key, timeout: float | None) -> Snapshot:
        state = self._state
        bound = timeout if timeout is not None else self._config.default_timeout
        give_up: float | None = None  # fixed when a wait is first needed
        while True:
            with state.lock:
                step = state.step(key)
            if isinstance(step, Snapshot):
                return step
            flight = self._take_off(key, bound) if step is RefreshRole.LEAD else self._flights[key]
            if give_up is None:
                give_up = time.monotonic() + bound
            remaining = give_up - time.monotonic()
            if remaining > 0:
                # asyncio.wait neither cancels the flight on timeout nor when we are cancelled.
                await asyncio.wait((flight,), timeout=remaining)
            if not flight.done():
                raise DeadlineExceeded(
                    f"waiting for the refresh of {key[0]}/{key[1]}", method=LIST_SERVICES
                )
            if not flight.cancelled():
                return flight.result()  # the snapshot, a stale one, or the refresh's error
            # Cancelled by close(): the refresh was abandoned; step again.

    def _take_off(self, key: Key, bound: float) -> asyncio.Task[Snapshot]:
        """Start the flight this caller just claimed (``step`` said ``LEAD``)."""
        if self._closed:
            closed = ClientClosed("the client is closed", method=LIST_SERVICES)
            self._state.refresh_failed(key, closed)  # releases the claim
            raise closed
        timeout = max(bound, self._config.default_timeout)
        flight = asyncio.get_running_loop().create_task(
            self._refresh(key, timeout), name=f"sdk-discovery-refresh {key[0]}/{key[1]}"
        )
        self._flights[key] = flight
        flight.add_done_callback(functools.partial(self._landed, key))
        return flight

    async def _refresh(self, key: Key, timeout: float) -> Snapshot:
        """The flight: fetch, then end the claim; runs no matter who still waits."""
        state = self._state
        try:
            views = await self._registry.list_services(key[0], self._config.env, timeout=timeout)
            snapshot = state.refreshed(key, state.service_in(key, views))
        except BaseException as exc:  # CancelledError too: abandoned, then raised
            stale = state.refresh_failed(key, exc)
            if stale is None:
                if isinstance(exc, ServiceNotFound):
                    self._channels.retain(key, ())
                raise
            return stale
        finally:
            self._flights.pop(key, None)  # in the same loop step as the state's outcome
        self._channels.retain(key, snapshot.view.instances)
        return snapshot

    def _landed(self, key: Key, flight: asyncio.Task[Snapshot]) -> None:
        if self._flights.get(key) is flight:
            # Cancelled before its first step: _refresh never ran to release the claim.
            del self._flights[key]
            self._state.refresh_failed(key, asyncio.CancelledError())
        if not flight.cancelled():
            flight.exception()  # read here too, for a flight every waiter gave up on

    def invalidate(self, project: str, name: str) -> None:
        """Forget the cached entry: the next resolve asks the registry."""
        self._state.invalidate((project, name))

    # --- pick ---------------------------------------------------------------

    async def pick(self, project: str, name: str, *, timeout: float | None = None) -> Pick:
        """The next healthy instance of ``project/name``, round-robin.

        Args:
            timeout: as for :meth:`resolve` (only used when the cache must be refreshed).

        Raises:
            ServiceNotFound: no such service.
            NoInstances: it has no online instance in ``config.env``.
            NoHealthyInstances: every instance is cooling down after reported failures.
            RegistryError: resolving failed (see :meth:`resolve`).
        """
        key = (project, name)
        picked = self._state.try_pick(key)  # the warm path: no await, no allocation
        if picked is not None:
            return picked
        return self._state.pick_from(key, await self._resolve(key, timeout))

    def is_cooling(self, project: str, name: str, instance: Instance) -> bool:
        """Whether ``instance`` is skipped by :meth:`pick` right now."""
        return self._state.is_cooling((project, name), instance)

    def failure_records(self, project: str, name: str) -> int:
        """How many instances of ``project/name`` have a failure record (cooling or not)."""
        return self._state.failure_records((project, name))

    # --- channels -----------------------------------------------------------

    def channel(
        self,
        project: str,
        name: str,
        *,
        network: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        max_attempts: int = 3,
    ) -> grpc.aio.Channel:
        """A ``grpc.aio.Channel`` that sends each call to a discovered instance.

        Use it with generated stubs unchanged (``await stub.Method(request)``). For every
        call it picks an instance of ``project/name``, dials
        ``instance.grpc_address(network)`` (one cached ``grpc.aio`` channel per address,
        closed when the instance vanishes and when the client closes) and, for unary
        calls, fails over to another instance when the call fails with UNAVAILABLE (at
        most ``max_attempts`` instances, within the call's deadline), reporting outcomes
        to the cooldowns. Streaming calls go to one picked instance without failover.

        Args:
            network: which endpoint network to dial (see :meth:`Instance.grpc_address`);
                ``None``: the best-priority endpoint of any network.
            credentials: TLS credentials for the instances; ``None`` dials plaintext.
                The registry token is never sent to instances.
            max_attempts: instances tried per unary call (>= 1).

        Discovery failures (``ServiceNotFound``, ``NoInstances``, ...) are raised as
        :mod:`sdk.errors` exceptions when the call is awaited (streams: first used); call
        failures as ``grpc.aio.AioRpcError``.
        """
        return AsyncDiscoveryChannel(
            self._state.try_pick,
            self.pick,
            self.resolve,
            self._channels,
            (project, name),
            network=network,
            credentials=credentials,
            max_attempts=check_max_attempts(max_attempts),
            default_timeout=self._config.default_timeout,
        )

    async def close(self) -> None:
        """Cancel refreshes in flight and close every per-instance channel (idempotent)."""
        self._closed = True
        flights = list(self._flights.values())
        for flight in flights:
            flight.cancel()
        try:
            if flights:
                await asyncio.wait(flights)
        finally:
            await self._channels.close()

    def __repr__(self) -> str:
        return f"AsyncDiscovery(env={self._config.env!r}, cached={len(self._state)})"
