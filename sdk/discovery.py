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
                as stale: the registry answered). An empty instance list is cached.
    order       instances sorted by ``instance_key`` (the server's order is unspecified)
    pick        round-robin over the instances not cooling down; the position survives
                refreshes (never back to 0); ``NoInstances`` / ``NoHealthyInstances``
    report      a failure cools the instance ``(service_id, instance_key)`` down for
                ``failure_cooldown`` seconds (escalating to ``cooldown_max``); a success
                clears its record; records of instances that vanished are pruned at refresh
    time        the client's clock (``monotonic()``); waiting for another thread's refresh
                is bounded in real time by the call's timeout (or ``default_timeout``)

Values handed out are immutable snapshots shared between callers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from sdk._core.balancer import NoPick, RoundRobin
from sdk._core.cache import CacheParams, DiscoveryCache, RefreshRole
from sdk._core.cooldown import CooldownParams, Cooldowns
from sdk._grpc.discovery_channel import DiscoveryChannel, InstanceChannels
from sdk.clock import Clock
from sdk.config import Config
from sdk.errors import (
    DeadlineExceeded,
    NoHealthyInstances,
    NoInstances,
    RegistryError,
    ServiceNotFound,
)
from sdk.models import Instance, ServiceView
from sdk.registry import RegistryClient

__all__ = ["Discovery", "Pick"]

_log = logging.getLogger("sdk.discovery")

Key = tuple[str, str]  # (project, name)
Identity = tuple[int, str]  # (service_id, instance_key)
_LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"


@dataclass(frozen=True, slots=True)
class _Snapshot:
    view: ServiceView
    identities: tuple[Identity, ...]  # same order as view.instances; one object per refresh
    live: frozenset[Identity]
    picks: tuple[Pick, ...]  # one per instance, built once per refresh: pick() allocates nothing


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
    """

    def __init__(self, registry: RegistryClient, config: Config, clock: Clock) -> None:
        policy = config.discovery
        self._registry = registry
        self._config = config
        self._clock = clock
        self._cache: DiscoveryCache[Key, _Snapshot] = DiscoveryCache(
            CacheParams(ttl=policy.cache_ttl, max_stale=policy.max_stale)
        )
        self._cooldown_params = CooldownParams(
            base=policy.failure_cooldown,
            multiplier=2.0 if policy.escalate else 1.0,
            maximum=policy.cooldown_max,
        )
        self._balancers: dict[Key, RoundRobin[Identity]] = {}
        self._cooldowns: dict[Key, Cooldowns[Identity]] = {}
        self._cond = threading.Condition(threading.Lock())
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

    def _resolve(self, key: Key, timeout: float | None) -> _Snapshot:
        cache = self._cache
        bound = timeout if timeout is not None else self._config.default_timeout
        give_up: float | None = None  # fixed when a wait is first needed
        with self._cond:
            while True:
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
                if role is RefreshRole.LEAD:
                    break
                if role is RefreshRole.SERVE_STALE and found.value is not None:
                    return found.value
                if give_up is None:
                    give_up = time.monotonic() + bound
                remaining = give_up - time.monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded(
                        f"waiting for the refresh of {key[0]}/{key[1]}", method=_LIST
                    )
                self._cond.wait(remaining)
        return self._refresh(key, timeout)

    def _refresh(self, key: Key, timeout: float | None) -> _Snapshot:
        """Fetch as the leader; every path ends the flight and wakes the waiters."""
        cache = self._cache
        try:
            view = self._fetch(key, timeout)
        except ServiceNotFound as exc:
            with self._cond:
                cache.invalidate(key)  # an answer, not an outage: no stale serving
                cache.on_refresh_failed(key, self._clock.monotonic(), exc)
                self._forget(key)
                self._cond.notify_all()
            raise
        except RegistryError as exc:
            with self._cond:
                outcome = cache.on_refresh_failed(key, self._clock.monotonic(), exc)
                self._cond.notify_all()
            if outcome.value is None:
                raise
            _log.warning(
                "refreshing %s/%s failed (%s); serving the entry from %.0f s ago",
                key[0],
                key[1],
                exc,
                outcome.age or 0.0,
            )
            return outcome.value
        except BaseException:
            with self._cond:
                cache.abandon_refresh(key)
                self._cond.notify_all()
            raise
        instances = tuple(sorted(view.instances, key=lambda i: i.instance_key))
        identities = tuple(i.identity for i in instances)
        snapshot = _Snapshot(
            ServiceView(view.service, instances),
            identities,
            frozenset(identities),
            tuple(Pick(i, self._reporter(key, i.identity)) for i in instances),
        )
        with self._cond:
            cache.on_refresh_ok(key, snapshot, self._clock.monotonic())
            cooldowns = self._cooldowns.get(key)
            if cooldowns is not None:
                cooldowns.prune(snapshot.live)
            self._cond.notify_all()
        self._channels.retain(key, instances)
        return snapshot

    def _fetch(self, key: Key, timeout: float | None) -> ServiceView:
        project, name = key
        for view in self._registry.list_services(project, self._config.env, timeout=timeout):
            if view.service.name == name and view.service.project == project:
                return view
        raise ServiceNotFound(project, name, env=self._config.env, method=_LIST)

    def _forget(self, key: Key) -> None:
        self._cooldowns.pop(key, None)
        self._channels.retain(key, ())

    def invalidate(self, project: str, name: str) -> None:
        """Forget the cached entry: the next resolve asks the registry."""
        with self._cond:
            self._cache.invalidate((project, name))

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
        with self._cond:  # the warm path: one lock hold, no allocation
            now = self._clock.monotonic()
            snapshot = self._cache.fresh_value(key, now)
            chosen = None if snapshot is None else self._choose(key, snapshot, now)
        if snapshot is None or chosen is None:
            snapshot = self._resolve(key, timeout)
            with self._cond:
                chosen = self._choose(key, snapshot, self._clock.monotonic())
        if chosen is NoPick.NO_INSTANCES:
            raise NoInstances(project, name, env=self._config.env)
        if chosen is NoPick.ALL_COOLING:
            raise NoHealthyInstances(
                project, name, cooling_down=len(snapshot.identities), env=self._config.env
            )
        return snapshot.picks[chosen]

    def _choose(self, key: Key, snapshot: _Snapshot, now: float) -> int | NoPick:
        """Round-robin over the usable instances (call with the lock held)."""
        balancer = self._balancers.get(key)
        if balancer is None:
            balancer = self._balancers[key] = RoundRobin()
        cooldowns = self._cooldowns.get(key)
        usable = None if cooldowns is None else cooldowns.available(now)
        return balancer.pick(snapshot.identities, usable)

    def _reporter(self, key: Key, identity: Identity) -> Callable[[BaseException | None], None]:
        def report(error: BaseException | None) -> None:
            with self._cond:
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

    def is_cooling(self, project: str, name: str, instance: Instance) -> bool:
        """Whether ``instance`` is skipped by :meth:`pick` right now."""
        with self._cond:
            cooldowns = self._cooldowns.get((project, name))
            return cooldowns is not None and cooldowns.is_cooling(
                instance.identity, self._clock.monotonic()
            )

    def failure_records(self, project: str, name: str) -> int:
        """How many instances of ``project/name`` have a failure record (cooling or not)."""
        with self._cond:
            cooldowns = self._cooldowns.get((project, name))
            return 0 if cooldowns is None else len(cooldowns)

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
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise ValueError(f"max_attempts must be an integer >= 1, not {max_attempts!r}")
        return DiscoveryChannel(
            self.pick,
            self._channels,
            (project, name),
            network=network,
            credentials=credentials,
            max_attempts=max_attempts,
            default_timeout=self._config.default_timeout,
        )

    def close(self) -> None:
        """Close every per-instance channel (idempotent)."""
        self._channels.close()

    def __repr__(self) -> str:
        return f"Discovery(env={self._config.env!r}, cached={len(self._cache)})"
