"""The discovery cache: freshness, stale serving and one refresh per key (CONTRACT 4.6, G11).

Rules:
    lookup    age < ttl                                   -> FRESH: serve the value
              ttl <= age < ttl + max_stale                -> STALE_USABLE: refresh; on failure
                                                             serve this value
              no entry, or age >= ttl + max_stale         -> MISSING: refresh; on failure raise
              a refresh failed less than failure_hold ago -> ``error`` is set: do not refresh
                                                             again yet; serve ``value`` if any,
                                                             else raise ``error``
    begin_refresh   none in flight                        -> LEAD: this caller refreshes
                    one in flight, usable value           -> SERVE_STALE: serve it, do not wait
                    one in flight, nothing usable         -> WAIT for the leader's outcome
    on_refresh_ok      store (value, fetched_at=now), clear the failure
    on_refresh_failed  remember (now, error); a lookup says what to do (serve stale or raise)
    abandon_refresh    the leader was cancelled: release the flight, remember nothing

``max_stale`` follows HTTP's Cache-Control ``max-stale``: seconds *past* the ttl. Values
are opaque (the shell stores immutable snapshots) and so are errors (the real exception,
handed to waiters, never a generic "refresh failed").
"""

from __future__ import annotations

import enum
import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CacheParams", "DiscoveryCache", "Freshness", "Lookup", "RefreshRole"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheParams:
    """Freshness budget of the discovery cache.

    Attributes:
        ttl: Age below which an entry is served without asking the registry (Go SDK: 30 s).
        max_stale: How long past ``ttl`` an entry may still be served when a refresh fails;
            ``0`` never serves stale data.
        failure_hold: After a failed refresh, how long lookups skip refreshing (serving
            stale data or the error), so an outage is not hit by every call; ``0``: no hold.
    """

    ttl: float = 30.0
    max_stale: float = 300.0
    failure_hold: float = 1.0

    def __post_init__(self) -> None:
        for name in ("ttl", "max_stale", "failure_hold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


class Freshness(enum.Enum):
    """How usable a cached entry is."""

    FRESH = "fresh"
    STALE_USABLE = "stale_usable"
    MISSING = "missing"


class RefreshRole(enum.Enum):
    """What a caller that needs a refresh should do."""

    LEAD = "lead"
    SERVE_STALE = "serve_stale"
    WAIT = "wait"


@dataclass(frozen=True, slots=True)
class Lookup(Generic[V]):
    """The answer of ``lookup``.

    Attributes:
        freshness: See ``Freshness``.
        value: The cached value when usable (``FRESH`` or ``STALE_USABLE``), else ``None``.
        age: Seconds since the entry was fetched; ``None`` when nothing was ever fetched.
        error: The last refresh failure while it holds refreshes back, else ``None``.
    """

    freshness: Freshness
    value: V | None
    age: float | None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class _Entry(Generic[V]):
    value: V
    fetched_at: float


@dataclass(frozen=True, slots=True)
class _Failure:
    at: float
    error: BaseException


class DiscoveryCache(Generic[K, V]):
    """Entries per key (e.g. ``(project, name)``) with their fetch time; pure bookkeeping."""

    __slots__ = ("_entries", "_failures", "_in_flight", "_params")

    def __init__(self, params: CacheParams | None = None) -> None:
        self._params = params or CacheParams()
        self._entries: dict[K, _Entry[V]] = {}
        self._failures: dict[K, _Failure] = {}
        self._in_flight: set[K] = set()

    @property
    def params(self) -> CacheParams:
        return self._params

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (
            f"DiscoveryCache(entries={len(self._entries)}, in_flight={len(self._in_flight)}, "
            f"params={self._params!r})"
        )

    def fresh_value(self, key: K, now: float) -> V | None:
        """The value if it is ``FRESH``, else ``None``: the allocation-free fast path."""
        entry = self._entries.get(key)
        if entry is not None and now - entry.fetched_at < self._params.ttl:
            return entry.value
        return None

    def lookup(self, key: K, now: float) -> Lookup[V]:
        """Classify the entry for ``key`` at ``now`` (see the module rules)."""
        params = self._params
        failure = self._failures.get(key)
        held = (
            failure.error
            if failure is not None and now - failure.at < params.failure_hold
            else None
        )
        entry = self._entries.get(key)
        if entry is None:
            return Lookup(Freshness.MISSING, None, None, held)
        age = max(0.0, now - entry.fetched_at)  # a clock stepping back must not age entries
        if age < params.ttl:
            return Lookup(Freshness.FRESH, entry.value, age)
        if age < params.ttl + params.max_stale:
            return Lookup(Freshness.STALE_USABLE, entry.value, age, held)
        return Lookup(Freshness.MISSING, None, age, held)

    def in_flight(self, key: K) -> bool:
        """Whether a refresh of ``key`` is under way (waiters wait while this holds)."""
        return key in self._in_flight

    def begin_refresh(self, key: K, now: float) -> RefreshRole:
        """Claim the refresh of ``key``, or learn who has it.

        ``LEAD`` obliges the caller to end with ``on_refresh_ok``, ``on_refresh_failed`` or
        ``abandon_refresh``, whatever happens (use ``try``/``finally``).
        """
        if key not in self._in_flight:
            self._in_flight.add(key)
            return RefreshRole.LEAD
        if self.lookup(key, now).value is not None:
            return RefreshRole.SERVE_STALE
        return RefreshRole.WAIT

    def on_refresh_ok(self, key: K, value: V, now: float) -> None:
        """Store a fetched value (an immutable snapshot) and end the flight."""
        self._in_flight.discard(key)
        self._failures.pop(key, None)
        self._entries[key] = _Entry(value, now)

    def on_refresh_failed(self, key: K, now: float, error: BaseException) -> Lookup[V]:
        """Record a failed refresh and end the flight.

        Returns:
            What to do now: ``STALE_USABLE`` with a ``value`` to serve, or ``MISSING``: raise
            ``error`` (always set here, even when ``failure_hold`` is 0).
        """
        self._in_flight.discard(key)
        self._failures[key] = _Failure(now, error)
        found = self.lookup(key, now)
        return Lookup(found.freshness, found.value, found.age, error)

    def abandon_refresh(self, key: K) -> None:
        """End the flight without an outcome (the leader was cancelled); waiters may lead."""
        self._in_flight.discard(key)

    def invalidate(self, key: K) -> None:
        """Forget the entry and any failure for ``key`` (a flight in progress is kept)."""
        self._entries.pop(key, None)
        self._failures.pop(key, None)

    def keys(self) -> list[K]:
        """Every key with an entry."""
        return list(self._entries)
