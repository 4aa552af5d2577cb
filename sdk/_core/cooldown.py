"""Failure records with an escalating cooldown, per instance (CONTRACT 4.6, G10).

Rules:
    key                 (service_id, instance_key), never the legacy endpoint string: an empty
                        endpoint must not put every instance of a service into one record
    failure, not cooling    level += 1; cooling until now + duration(level), where
                            duration(level) = min(maximum, base * multiplier ** (level - 1))
    failure, cooling        counted, but neither extends nor escalates: calls that were already
                            in flight when the first one failed report the same outage
    failure, quiet for `maximum` after the last cooldown ended     level restarts at 1
    success             the record is dropped (the Go SDK never cleared one)
    prune(live keys)    records of instances that vanished from discovery are dropped
    more than `max_records` records      the least recently failed one is dropped

Plain numbers in, plain answers out: no clock, no locks (the shell holds one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CooldownParams", "Cooldowns", "FailureRecord"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class CooldownParams:
    """How long a failed instance is skipped.

    Attributes:
        base: First cooldown, in seconds (the Go SDK's fixed 30 s).
        multiplier: Growth per consecutive cooldown; ``1`` disables escalation.
        maximum: Longest cooldown; also how long after a cooldown ends a new failure still
            escalates rather than starting over.
        max_records: Bound on remembered records; the least recently failed go first.
    """

    base: float = 30.0
    multiplier: float = 2.0
    maximum: float = 300.0
    max_records: int = 10_000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base) and self.base >= 0):
            raise ValueError(f"base must be a finite number >= 0, got {self.base!r}")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"multiplier must be a finite number >= 1, got {self.multiplier!r}")
        if not (math.isfinite(self.maximum) and self.maximum >= self.base):
            raise ValueError(f"maximum must be finite and >= base, got {self.maximum!r}")
        if self.max_records < 1:
            raise ValueError(f"max_records must be >= 1, got {self.max_records!r}")

    def duration(self, level: int) -> float:
        """Cooldown length for the ``level``-th consecutive cooldown (1-based)."""
        try:
            grown = self.base * self.multiplier ** max(0, level - 1)
        except OverflowError:
            return self.maximum
        return min(grown, self.maximum)


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """What is remembered about one instance.

    Attributes:
        level: Consecutive cooldowns so far (1 after the first failure).
        until: Local-clock time at which the instance is usable again.
        failures: Every failure reported since the record was created.
        last_failure_at: Local-clock time of the latest report.
    """

    level: int
    until: float
    failures: int
    last_failure_at: float


class Cooldowns(Generic[K]):
    """Failure records keyed by instance identity, bounded in size."""

    __slots__ = ("_params", "_records")

    def __init__(self, params: CooldownParams | None = None) -> None:
        self._params = params or CooldownParams()
        # Insertion order = order of the latest failure, so the first key is the eviction victim.
        self._records: dict[K, FailureRecord] = {}

    @property
    def params(self) -> CooldownParams:
        return self._params

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        return f"Cooldowns(records={len(self._records)}, params={self._params!r})"

    def record(self, key: K) -> FailureRecord | None:
        """The record for ``key``, cooling or not; ``None`` if there is none."""
        return self._records.get(key)

    def is_cooling(self, key: K, now: float) -> bool:
        """Whether ``key`` must be skipped at ``now``."""
        record = self._records.get(key)
        return record is not None and now < record.until

    def available(self, now: float) -> Callable[[K], bool] | None:
        """A "may be picked" predicate for the balancer, or ``None`` when nothing is recorded.

        ``None`` lets the balancer skip the predicate call entirely on the common path.
        """
        if not self._records:
            return None
        records = self._records

        def usable(key: K) -> bool:
            record = records.get(key)
            return record is None or now >= record.until

        return usable

    def record_failure(self, key: K, now: float) -> float:
        """Report a failed call to ``key`` at ``now``; returns the end of its cooldown."""
        params = self._params
        old = self._records.pop(key, None)  # re-inserted below: moves the key to the end
        if old is None:
            record = FailureRecord(1, now + params.duration(1), 1, now)
        elif now < old.until:
            record = FailureRecord(old.level, old.until, old.failures + 1, now)
        else:
            quiet = now - old.until >= params.maximum
            level = 1 if quiet else old.level + 1
            record = FailureRecord(level, now + params.duration(level), old.failures + 1, now)
        self._records[key] = record
        while len(self._records) > params.max_records:
            del self._records[next(iter(self._records))]
        return record.until

    def record_success(self, key: K) -> bool:
        """Report a successful call to ``key``; returns whether a record was cleared."""
        return self._records.pop(key, None) is not None

    def prune(self, live_keys: Collection[K]) -> int:
        """Drop records whose key is not in ``live_keys``; returns how many went.

        Pass a set (or another container with fast membership) of every instance key that
        discovery still reports.
        """
        gone = [key for key in self._records if key not in live_keys]
        for key in gone:
            del self._records[key]
        return len(gone)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
