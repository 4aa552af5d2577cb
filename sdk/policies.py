"""The client's policies: token refresh, heartbeats, discovery and keepalive, as frozen values.

Policies are the user-facing knobs of :class:`sdk.Config`. The decisions they drive
(refresh times, beat intervals, backoff delays, cooldowns) are made by the sans-IO core
(``sdk._core``), which the client builds from these values, so the arithmetic lives in one
place; each policy says what it maps onto. Importable from :mod:`sdk` and :mod:`sdk.config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sdk._checks import number as _number
from sdk.errors import ConfigError

__all__ = ["DiscoveryPolicy", "HeartbeatPolicy", "KeepalivePolicy", "TokenPolicy"]


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """When to refresh the access token (CONTRACT G6); maps onto ``_core.token.TokenParams``.

    Args:
        refresh_lead_max: the longest lead in seconds (the reference SDK's
            fixed 300 s). ``0`` refreshes only once the token has expired.
        refresh_lead_fraction: the lead as a share of the token's observed
            lifetime, in ``[0, 1)``, so short-lived tokens are not renewed
            on every call.
    """

    refresh_lead_max: float = 300.0
    refresh_lead_fraction: float = 0.5

    def __post_init__(self) -> None:
        _number("token.refresh_lead_max", self.refresh_lead_max)
        _number("token.refresh_lead_fraction", self.refresh_lead_fraction)
        if self.refresh_lead_fraction >= 1:
            raise ConfigError("token.refresh_lead_fraction", "must be < 1")

    def refresh_lead(self, lifetime: float) -> float:
        """Seconds before expiry to refresh: ``min(max, fraction * lifetime)``.

        Args:
            lifetime: ``expires_at`` minus the time the token was obtained;
                ``<= 0`` (already expired on arrival) gives a lead of ``0``.
        """
        return min(self.refresh_lead_max, self.refresh_lead_fraction * max(lifetime, 0.0))


Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True, slots=True)
class HeartbeatPolicy:
    """Heartbeat spacing and retry backoff (CONTRACT G3, G4).

    Beats run every ``effective_ttl / 3`` seconds (the server's 60 s when
    the registration sent ``ttl_seconds <= 0``), at least ``min_interval``.
    Maps onto ``_core.lease_values.LeaseParams`` and its ``Backoff``.

    Args:
        min_interval: floor of the beat interval in seconds (> 0).
        backoff_initial: the delay ceiling after the first failure (> 0).
        backoff_max: the largest delay ceiling (>= ``backoff_initial``).
        backoff_multiplier: growth per consecutive failure (>= 1; ``1``
            keeps the delay constant).
        jitter: ``"full"`` draws each delay from ``[0, ceiling)``,
            ``"equal"`` from ``[ceiling/2, ceiling)``, ``"none"`` waits the
            ceiling itself.
        answer_timeout: how long a sent beat may wait for its answer
            before the stream counts as broken (> 0).
    """

    min_interval: float = 1.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    backoff_multiplier: float = 2.0
    jitter: Jitter = "full"
    answer_timeout: float = 10.0

    def __post_init__(self) -> None:
        _number("heartbeat.min_interval", self.min_interval, strict=True)
        _number("heartbeat.backoff_initial", self.backoff_initial, strict=True)
        _number("heartbeat.backoff_max", self.backoff_max, minimum=self.backoff_initial)
        _number("heartbeat.backoff_multiplier", self.backoff_multiplier, minimum=1.0)
        _number("heartbeat.answer_timeout", self.answer_timeout, strict=True)
        if self.jitter not in ("full", "equal", "none"):
            raise ConfigError(
                "heartbeat.jitter", f"must be 'full', 'equal' or 'none', not {self.jitter!r}"
            )


@dataclass(frozen=True, slots=True)
class DiscoveryPolicy:
    """Discovery cache and failure cooldown (CONTRACT G10, G11).

    Maps onto ``_core.cache.CacheParams`` (``cache_ttl``, ``max_stale``) and
    ``_core.cooldown.CooldownParams`` (``failure_cooldown`` as the base,
    ``cooldown_max`` as the maximum, multiplier 2 or, without
    ``escalate``, 1).

    Args:
        cache_ttl: seconds a resolved entry is served without asking the
            registry; ``0`` asks every time.
        max_stale: how long past ``cache_ttl`` an entry may still be served
            when refreshing it fails; ``0`` never serves stale data.
        failure_cooldown: seconds an instance is skipped after a reported
            failure; ``0`` never skips.
        cooldown_max: the cap when cooldowns escalate (>= ``failure_cooldown``).
        escalate: double the cooldown for each consecutive failure, up
            to ``cooldown_max``; ``False`` keeps it at ``failure_cooldown``.
    """

    cache_ttl: float = 30.0
    max_stale: float = 300.0
    failure_cooldown: float = 30.0
    cooldown_max: float = 300.0
    escalate: bool = True

    def __post_init__(self) -> None:
        _number("discovery.cache_ttl", self.cache_ttl)
        _number("discovery.max_stale", self.max_stale)
        _number("discovery.failure_cooldown", self.failure_cooldown)
        _number("discovery.cooldown_max", self.cooldown_max, minimum=self.failure_cooldown)


@dataclass(frozen=True, slots=True)
class KeepalivePolicy:
    """HTTP/2 keepalive pings on registry channels.

    The defaults respect gRPC's keepalive rules (gRFC A8): a server built on
    grpc-go, like the real registry, answers pings more frequent than every
    5 minutes with GOAWAY ``too_many_pings`` by default, and refuses pings
    without an active call. Heartbeats already detect a dead stream within
    ``HeartbeatPolicy.answer_timeout``; keepalive is the backstop.

    Args:
        enabled: ``False`` sets no keepalive options (gRPC's own defaults).
        keepalive_time_ms: interval between pings (>= 10,000, gRPC's floor).
        keepalive_timeout_ms: how long to wait for a ping's ack (> 0).
        permit_without_calls: ping even when no call is active.
    """

    enabled: bool = True
    keepalive_time_ms: int = 300_000
    keepalive_timeout_ms: int = 20_000
    permit_without_calls: bool = False

    def __post_init__(self) -> None:
        _number("keepalive.keepalive_time_ms", self.keepalive_time_ms, minimum=10_000)
        _number("keepalive.keepalive_timeout_ms", self.keepalive_timeout_ms, strict=True)

    def channel_options(self) -> tuple[tuple[str, int], ...]:
        """The grpcio channel options; ``()`` when disabled."""
        if not self.enabled:
            return ()
        return (
            ("grpc.keepalive_time_ms", int(self.keepalive_time_ms)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_ms)),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
        )
