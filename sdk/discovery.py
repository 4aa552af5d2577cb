"""Discovery: resolve a service to its instances, pick one, track failures (CONTRACT 4.6).

Exposed as ``client.discovery``::

    pick = client.discovery.pick("demo", "echo")
    try:
        reply = call(pick.instance.grpc_address())
    except Exception as exc:
        pick.failed(exc)
        raise
    pick.succeeded()

    stub = EchoServiceStub(client.discovery.channel("demo", "echo"))  # does all of that

Rules (the Go SDK's defects fixed, G10 and G11):
    resolve     ``ListServices(project, config.env)``, the service named ``name`` (exact);
                an entry is served for ``discovery.cache_ttl`` seconds (30) without asking;
                one refresh per service at a time: concurrent callers wait for it (or get the
                stale entry at once if one is usable); a failed refresh serves the stale entry
                for up to ``discovery.max_stale`` seconds past the ttl, then raises the real
                error. A service that does not exist raises ``ServiceNotFound`` (not cached
                as stale: the registry answered). An empty instance list is cached. A
                refresh cut short (cancelled, ``ClientClosed``) leaves nothing behind.
    order       instances sorted by ``instance_key`` (the server's order is unspecified)
    pick        round-robin over the instances not cooling down; the position survives
                refreshes (never back to 0); ``NoInstances`` / ``NoHealthyInstances``
    report      a failure cools the instance ``(service_id, instance_key)`` down for
                ``failure_cooldown`` seconds (escalating to ``cooldown_max``); a success
                clears its record; records of instances that vanished are pruned at refresh
    time        the client's clock (``monotonic()``); waiting for another thread's refresh
                is bounded in real time by the call's timeout (or ``default_timeout``)

Values handed out are immutable snapshots shared between callers. The decisions are made
in ``sdk._discovery_state``, shared with the asyncio twin :mod:`sdk.aio.discovery`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from sdk._discovery_state import LIST_SERVICES, DiscoveryState, Key, RefreshRole, Snapshot
from sdk._grpc.discovery_calls import check_max_attempts
from sdk._grpc.discovery_channel import DiscoveryChannel, InstanceChannels
from sdk.clock import Clock
from sdk.config import Config
from sdk.errors import DeadlineExceeded, ServiceNotFound
from sdk.models import Instance, ServiceView
from sdk.registry import RegistryClient

__all__ = ["Discovery", "Pick"]


@dataclass(frozen=True, slots=True)
class Pick:
    """One chosen instance and how to report the outcome of the call made to it.

    Attributes:
        instance: the instance to call.

    Report once per call: :meth:`succeeded` clears the instance's failure record,
    :meth:`failed` cools it down. Not reporting is allowed (nothing changes).
    """

    instance: Instance
    _report: Callable[[BaseException | None], None] = field(repr=False, compare=False)

    def report(self, error: BaseException | None = None) -> None:
        """``None``: the call succeeded; an exception: it failed because of the instance."""
        self._report(error)

    def succeeded(self) -> None:
        """The call worked: clear the instance's failure record."""
        self._report(None)

    def failed(self, error: BaseException | None = None) -> None:
        """The instance failed the call (unreachable, UNAVAILABLE): cool it down."""
        self._report(error if error is not None else RuntimeError("reported failed"))


class Discovery:
    """Resolve services through a 30 s cache and balance calls over their instances.

    Args:
        registry: the client's registry client (``ListServices`` goes through it).
        config: ``env`` filters the instances; ``discovery`` sets the cache and cooldowns.
        clock: the client's clock.

    Thread-safe. :meth:`close` (run by ``Client.close``) closes the per-instance channels.
    The decisions live in ``sdk._discovery_state`` (shared with ``sdk.aio``); this class
    calls the registry and blocks the threads that wait for another one's refresh.
    """

    def __init__(self, registry: RegistryClient, config: Config, clock: Clock) -> None:
        self._registry = registry
        self._config = config
        self._clock = clock
        self._state = DiscoveryState(config, clock)
        self._cond = threading.Condition(self._state.lock)
        self._channels = InstanceChannels(config)

    # --- resolve ------------------------------------------------------------

    def resolve(self, project: str, name: str, *, timeout: float | None = None) -> ServiceView:
        """The service ``project/name`` with its online instances in ``config.env``.

        Args:
            timeout: bound in seconds for the ``ListServices`` call and for waiting on
                another thread's refresh; ``None`` is the client's default deadline.

        Raises:
            ServiceNotFound: the registry has no such service.
            RegistryError: the registry failed and no entry within ``max_stale`` exists.
        """
        return self._resolve((project, name), timeout).view

    def _resolve(self, key: Key, timeout: float | None) -> Snapshot:
        bound = timeout if timeout is not None else self._config.default_timeout
        give_up: float | None = None  # fixed when a wait is first needed
        with self._cond:
            while True:
                step = self._state.step(key)
                if step is RefreshRole.LEAD:
                    break
                if isinstance(step, Snapshot):
                    return step
                if give_up is None:
                    give_up = time.monotonic() + bound
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(
                        f"waiting for the refresh of {key[0]}/{key[1]}", method=LIST_SERVICES
                    )
                self._cond.wait(remaining)
        return self._refresh(key, timeout)

    def _refresh(self, key: Key, timeout: float | None) -> Snapshot:
        """Fetch as the leader; every path ends the flight and wakes the waiters."""
        state = self._state
        try:
            try:
                views = self._registry.list_services(key[0], self._config.env, timeout=timeout)
                snapshot = state.refreshed(key, state.service_in(key, views))
            except BaseException as exc:
                stale = state.refresh_failed(key, exc)
                if stale is None:
                    if isinstance(exc, ServiceNotFound):
                        self._channels.retain(key, ())
                    raise
                return stale
        finally:
            with self._cond:
                self._cond.notify_all()
        self._channels.retain(key, snapshot.view.instances)
        return snapshot

    def invalidate(self, project: str, name: str) -> None:
        """Forget the cached entry: the next resolve asks the registry."""
        self._state.invalidate((project, name))

    # --- pick ---------------------------------------------------------------

    def pick(self, project: str, name: str, *, timeout: float | None = None) -> Pick:
        """The next healthy instance of ``project/name``, round-robin.

        Raises:
            ServiceNotFound: no such service.
            NoInstances: it has no online instance in ``config.env``.
            NoHealthyInstances: every instance is cooling down after reported failures.
            RegistryError: resolving failed (see :meth:`resolve`).
        """
        key = (project, name)
        picked = self._state.try_pick(key)  # the warm path: one lock hold, no allocation
        if picked is not None:
            return picked
        return self._state.pick_from(key, self._resolve(key, timeout))

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
    ) -> grpc.Channel:
        """A ``grpc.Channel`` that sends each call to a discovered instance of ``project/name``.

        Use it with generated stubs unchanged. For every call it picks an instance,
        dials ``instance.grpc_address(network)`` (one cached channel per address, closed
        when the instance vanishes and when the client closes) and, for unary calls,
        fails over to another instance when the call fails with UNAVAILABLE (at most
        ``max_attempts`` instances, within the call's deadline), reporting outcomes to
        the cooldowns. Streaming calls go to one picked instance without failover.

        Args:
            network: which endpoint network to dial (see :meth:`Instance.grpc_address`);
                ``None``: the best-priority endpoint of any network.
            credentials: TLS credentials for the instances; ``None`` dials plaintext.
                The registry token is never sent to instances.
            max_attempts: instances tried per unary call (>= 1).

        Discovery failures (``ServiceNotFound``, ``NoInstances``, ...) are raised as
        :mod:`sdk.errors` exceptions from the stub call; call failures as ``grpc.RpcError``.
        """
        return DiscoveryChannel(
            self.pick,
            self._channels,
            (project, name),
            network=network,
            credentials=credentials,
            max_attempts=check_max_attempts(max_attempts),
            default_timeout=self._config.default_timeout,
        )

    def close(self) -> None:
        """Close every per-instance channel (idempotent)."""
        self._channels.close()

    def __repr__(self) -> str:
        return f"Discovery(env={self._config.env!r}, cached={len(self._state)})"
