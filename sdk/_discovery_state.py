"""The discovery state both shells share: cache, round-robin, cooldowns and snapshots.

:class:`sdk.discovery.Discovery` (threads) and :class:`sdk.aio.discovery.AsyncDiscovery`
(asyncio) differ only in how they call ``ListServices`` and wait for another caller's
refresh. Every decision of the rules in :mod:`sdk.discovery` is made here, behind one
``threading.Lock`` that is held for microseconds and never across IO (reporters may run
on any thread, also in the asyncio flavour).

How a shell resolves ``key = (project, name)``:

    with state.lock: step = state.step(key)   # raises a failure still held back
        a _Snapshot     -> serve it (fresh, or stale while another caller refreshes)
        RefreshRole.LEAD  -> fetch: ``state.service_in(key, views)`` picks the service out
                           of the ``ListServices`` answer, then exactly one of
                           ``refreshed(key, view)`` or ``refresh_failed(key, error)``
        RefreshRole.WAIT  -> wait for the leader's outcome, then step again

Only :meth:`DiscoveryState.step` expects the caller to hold ``lock`` (the sync shell
waits on a ``Condition`` over it between steps); every other method takes it itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdk._core.balancer import NoPick, RoundRobin
from sdk._core.cache import CacheParams, DiscoveryCache, RefreshRole
from sdk._core.cooldown import CooldownParams, Cooldowns
from sdk.clock import Clock
from sdk.config import Config
from sdk.errors import (
    Cancelled,
    NoHealthyInstances,
    NoInstances,
    RegistryError,
    ServiceNotFound,
)
from sdk.models import Instance, ServiceView

if TYPE_CHECKING:
    from sdk.discovery import Pick

__all__ = ["LIST_SERVICES", "DiscoveryState", "Identity", "Key", "RefreshRole", "Snapshot"]

_log = logging.getLogger("sdk.discovery")

Key = tuple[str, str]  # (project, name)
Identity = tuple[int, str]  # (service_id, instance_key)
LIST_SERVICES = "/xiaozhizhang.registry.v1.RegistryService/ListServices"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One refresh's answer, shared by every caller until the next one."""

    view: ServiceView
    identities: tuple[Identity, ...]  # same order as view.instances; one object per refresh
    live: frozenset[Identity]
    picks: tuple[Pick, ...]  # one per instance, built once per refresh: pick() allocates nothing


class DiscoveryState:
    """Cache, balancers and cooldowns of one client's discovery (see the module docs).

    Args:
        config: ``env`` filters the instances; ``discovery`` sets the cache and cooldowns.
        clock: the client's clock; ages and cooldowns read ``clock.monotonic()``.
    """

    __slots__ = (
        "_balancers",
        "_cache",
        "_clock",
        "_cooldown_params",
        "_cooldowns",
        "_env",
        "lock",
    )

    def __init__(self, config: Config, clock: Clock) -> None:
        policy = config.discovery
        self._clock = clock
        self._env = config.env
        self._cache: DiscoveryCache[Key, Snapshot] = DiscoveryCache(
            CacheParams(ttl=policy.cache_ttl, max_stale=policy.max_stale)
        )
        self._cooldown_params = CooldownParams(
            base=policy.failure_cooldown,
            multiplier=2.0 if policy.escalate else 1.0,
            maximum=policy.cooldown_max,
        )
        self._balancers: dict[Key, RoundRobin[Identity]] = {}
        self._cooldowns: dict[Key, Cooldowns[Identity]] = {}
        self.lock = threading.Lock()

    def __len__(self) -> int:
        """How many services have a cached entry."""
        return len(self._cache)

    # --- resolving (the shells do the IO and the waiting) ---------------------------------

    def step(self, key: Key) -> Snapshot | RefreshRole:
        """What a resolver does now: serve a snapshot, ``LEAD`` a refresh or ``WAIT``.

        Call with :attr:`lock` held. ``LEAD`` claims the refresh: end it with
        :meth:`refreshed` or :meth:`refresh_failed`, whatever happens.

        Raises:
            RegistryError: a refresh failed moments ago (``failure_hold``) and nothing
                usable is cached: the same error, without asking the registry again.
        """
        cache = self._cache
        now = self._clock.monotonic()
        fresh = cache.fresh_value(key, now)
        if fresh is not None:
            return fresh
        found = cache.lookup(key, now)
        if found.error is not None:  # a refresh just failed: do not hammer
            if found.value is not None:
                return found.value
            raise found.error
        role = cache.begin_refresh(key, now)
        if role is RefreshRole.SERVE_STALE:
            return found.value if found.value is not None else RefreshRole.WAIT
        return role

    def service_in(self, key: Key, views: Iterable[ServiceView]) -> ServiceView:
        """The service ``key`` names (exact project and name) among ``ListServices``' views.

        Raises:
            ServiceNotFound: the registry has no such service.
        """
        project, name = key
        for view in views:
            if view.service.name == name and view.service.project == project:
                return view
        raise ServiceNotFound(project, name, env=self._env, method=LIST_SERVICES)

    def refreshed(self, key: Key, view: ServiceView) -> Snapshot:
        """End the refresh with ``view``: store its snapshot, prune vanished cooldowns."""
        from sdk.discovery import Pick  # the public value; sdk.discovery imports this module

        instances = tuple(sorted(view.instances, key=lambda i: i.instance_key))
        identities = tuple(i.identity for i in instances)
        snapshot = Snapshot(
            ServiceView(view.service, instances),
            identities,
            frozenset(identities),
            tuple(Pick(i, self._reporter(key, i.identity)) for i in instances),
        )
        with self.lock:
            self._cache.on_refresh_ok(key, snapshot, self._clock.monotonic())
            cooldowns = self._cooldowns.get(key)
            if cooldowns is not None:
                cooldowns.prune(snapshot.live)
        return snapshot

    def refresh_failed(self, key: Key, error: BaseException) -> Snapshot | None:
        """End the refresh with ``error``; returns the stale snapshot to serve, if any.

        ``None`` means: raise ``error``. ``ServiceNotFound`` is an answer, not an outage:
        the entry and the service's cooldowns are dropped, nothing stale is served.
        Cancellation (``CancelledError``, ``Cancelled``, ``ClientClosed``) or any error that
        is not a ``RegistryError`` says nothing about the registry: the refresh is
        abandoned, nothing is remembered, the next caller leads a new one. Any other
        ``RegistryError`` is remembered (``failure_hold``) and a snapshot within
        ``max_stale`` is served.
        """
        cache = self._cache
        with self.lock:
            now = self._clock.monotonic()
            if isinstance(error, ServiceNotFound):
                cache.invalidate(key)
                cache.on_refresh_failed(key, now, error)
                self._cooldowns.pop(key, None)
                return None
            if not isinstance(error, RegistryError) or isinstance(error, Cancelled):
                cache.abandon_refresh(key)
                return None
            outcome = cache.on_refresh_failed(key, now, error)
        if outcome.value is not None:
            _log.warning(
                "refreshing %s/%s failed (%s); serving the entry from %.0f s ago",
                key[0],
                key[1],
                error,
                outcome.age or 0.0,
            )
        return outcome.value

    def invalidate(self, key: Key) -> None:
        """Forget the cached entry: the next resolve asks the registry."""
        with self.lock:
            self._cache.invalidate(key)

    # --- picking and reporting ------------------------------------------------------------

    def try_pick(self, key: Key) -> Pick | None:
        """The next pick from a fresh entry (one lock hold, no allocation); ``None``: resolve.

        Raises:
            NoInstances, NoHealthyInstances: the fresh entry has nothing to pick.
        """
        with self.lock:
            now = self._clock.monotonic()
            snapshot = self._cache.fresh_value(key, now)
            if snapshot is None:
                return None
            chosen = self._choose(key, snapshot, now)
        return self._picked(key, snapshot, chosen)

    def pick_from(self, key: Key, snapshot: Snapshot) -> Pick:
        """The next pick among ``snapshot``'s instances (just resolved).

        Raises:
            NoInstances, NoHealthyInstances: nothing to pick.
        """
        with self.lock:
            chosen = self._choose(key, snapshot, self._clock.monotonic())
        return self._picked(key, snapshot, chosen)

    def _picked(self, key: Key, snapshot: Snapshot, chosen: int | NoPick) -> Pick:
        if chosen is NoPick.NO_INSTANCES:
            raise NoInstances(*key, env=self._env)
        if chosen is NoPick.ALL_COOLING:
            raise NoHealthyInstances(*key, cooling_down=len(snapshot.identities), env=self._env)
        return snapshot.picks[chosen]

    def _choose(self, key: Key, snapshot: Snapshot, now: float) -> int | NoPick:
        """Round-robin over the usable instances (call with the lock held)."""
        balancer = self._balancers.get(key)
        if balancer is None:
            balancer = self._balancers[key] = RoundRobin()
        cooldowns = self._cooldowns.get(key)
        usable = None if cooldowns is None else cooldowns.available(now)
        return balancer.pick(snapshot.identities, usable)

    def _reporter(self, key: Key, identity: Identity) -> Callable[[BaseException | None], None]:
        def report(error: BaseException | None) -> None:
            with self.lock:
                cooldowns = self._cooldowns.get(key)
                if error is None:
                    if cooldowns is not None:
                        cooldowns.record_success(identity)
                    return
                if cooldowns is None:
                    cooldowns = self._cooldowns[key] = Cooldowns(self._cooldown_params)
                if self._still_listed(key, identity):
                    until = cooldowns.record_failure(identity, self._clock.monotonic())
                    _log.info("instance %s of %s/%s cools down until %.1f", identity, *key, until)

        return report

    def _still_listed(self, key: Key, identity: Identity) -> bool:
        found = self._cache.lookup(key, self._clock.monotonic())
        return found.value is None or identity in found.value.live

    def is_cooling(self, key: Key, instance: Instance) -> bool:
        """Whether ``instance`` is skipped by picks right now."""
        with self.lock:
            cooldowns = self._cooldowns.get(key)
            return cooldowns is not None and cooldowns.is_cooling(
                instance.identity, self._clock.monotonic()
            )

    def failure_records(self, key: Key) -> int:
        """How many instances of ``key`` have a failure record (cooling or not)."""
        with self.lock:
            cooldowns = self._cooldowns.get(key)
            return 0 if cooldowns is None else len(cooldowns)

    def __repr__(self) -> str:
        return f"DiscoveryState(env={self._env!r}, cached={len(self._cache)})"
