"""DiscoveryCache: freshness classes, single flight, stale serving (CONTRACT 4.6, G11)."""

from __future__ import annotations

import pytest

from sdk._core.cache import CacheParams, DiscoveryCache, Freshness, Lookup, RefreshRole

KEY = ("proj", "svc")
OTHER = ("proj", "other")
SNAPSHOT = ("i1", "i2")
NEWER = ("i2", "i3")


@pytest.fixture
def cache() -> DiscoveryCache[tuple[str, str], tuple[str, ...]]:
    return DiscoveryCache()  # ttl 30, max_stale 300, failure_hold 1


Cache = DiscoveryCache[tuple[str, str], tuple[str, ...]]


def fill(cache: Cache, now: float, value: tuple[str, ...] = SNAPSHOT) -> None:
    assert cache.begin_refresh(KEY, now) is RefreshRole.LEAD
    cache.on_refresh_ok(KEY, value, now)


def test_missing_until_fetched(cache: Cache) -> None:
    assert cache.lookup(KEY, 0.0) == Lookup(Freshness.MISSING, None, None)
    assert cache.fresh_value(KEY, 0.0) is None


@pytest.mark.parametrize(
    ("age", "freshness", "served"),
    [
        (0.0, Freshness.FRESH, True),
        (29.9, Freshness.FRESH, True),
        (30.0, Freshness.STALE_USABLE, True),
        (329.9, Freshness.STALE_USABLE, True),
        (330.0, Freshness.MISSING, False),  # ttl + max_stale: too old to serve even on error
    ],
)
def test_freshness_by_age(cache: Cache, age: float, freshness: Freshness, served: bool) -> None:
    fill(cache, 100.0)
    found = cache.lookup(KEY, 100.0 + age)
    assert found.freshness is freshness
    assert found.value == (SNAPSHOT if served else None)
    assert found.age == pytest.approx(age)
    assert (cache.fresh_value(KEY, 100.0 + age) is not None) is (freshness is Freshness.FRESH)


def test_clock_stepping_back_does_not_age(cache: Cache) -> None:
    fill(cache, 100.0)
    assert cache.lookup(KEY, 90.0) == Lookup(Freshness.FRESH, SNAPSHOT, 0.0)


def test_one_refresh_in_flight_per_key(cache: Cache) -> None:
    assert cache.begin_refresh(KEY, 0.0) is RefreshRole.LEAD
    assert cache.in_flight(KEY)
    assert cache.begin_refresh(KEY, 0.0) is RefreshRole.WAIT  # nothing usable yet
    assert cache.begin_refresh(OTHER, 0.0) is RefreshRole.LEAD  # keys are independent
    cache.on_refresh_ok(KEY, SNAPSHOT, 1.0)
    assert not cache.in_flight(KEY)
    assert cache.lookup(KEY, 1.0).value == SNAPSHOT


def test_waiters_get_stale_data_instead_of_waiting(cache: Cache) -> None:
    fill(cache, 0.0)
    assert cache.begin_refresh(KEY, 40.0) is RefreshRole.LEAD
    assert cache.begin_refresh(KEY, 40.0) is RefreshRole.SERVE_STALE


def test_refresh_replaces_the_entry(cache: Cache) -> None:
    fill(cache, 0.0)
    fill(cache, 40.0, NEWER)
    assert cache.lookup(KEY, 41.0) == Lookup(Freshness.FRESH, NEWER, 1.0)


def test_failed_refresh_serves_stale(cache: Cache) -> None:
    fill(cache, 0.0)
    cache.begin_refresh(KEY, 40.0)
    error = RuntimeError("registry down")
    outcome = cache.on_refresh_failed(KEY, 40.0, error)
    assert outcome == Lookup(Freshness.STALE_USABLE, SNAPSHOT, 40.0, error)
    assert not cache.in_flight(KEY)


def test_failed_refresh_without_usable_data_raises(cache: Cache) -> None:
    cache.begin_refresh(KEY, 0.0)
    error = RuntimeError("registry down")
    outcome = cache.on_refresh_failed(KEY, 0.0, error)
    assert outcome.freshness is Freshness.MISSING
    assert outcome.value is None
    assert outcome.error is error  # the real exception, not a generic one


def test_failure_hold_stops_every_call_from_refreshing(cache: Cache) -> None:
    fill(cache, 0.0)
    error = RuntimeError("down")
    cache.begin_refresh(KEY, 40.0)
    cache.on_refresh_failed(KEY, 40.0, error)
    held = cache.lookup(KEY, 40.5)
    assert (held.freshness, held.value, held.error) == (Freshness.STALE_USABLE, SNAPSHOT, error)
    assert cache.lookup(KEY, 41.0).error is None  # hold over: refresh again


def test_failure_hold_for_missing_entries(cache: Cache) -> None:
    error = RuntimeError("down")
    cache.begin_refresh(KEY, 0.0)
    cache.on_refresh_failed(KEY, 0.0, error)
    assert cache.lookup(KEY, 0.5) == Lookup(Freshness.MISSING, None, None, error)


def test_success_clears_the_failure(cache: Cache) -> None:
    cache.begin_refresh(KEY, 0.0)
    cache.on_refresh_failed(KEY, 0.0, RuntimeError("down"))
    fill(cache, 0.2)
    assert cache.lookup(KEY, 0.3).error is None


def test_zero_hold_still_reports_the_error_once() -> None:
    cache: Cache = DiscoveryCache(CacheParams(failure_hold=0.0))
    error = RuntimeError("down")
    cache.begin_refresh(KEY, 0.0)
    assert cache.on_refresh_failed(KEY, 0.0, error).error is error
    assert cache.lookup(KEY, 0.0).error is None


def test_zero_max_stale_never_serves_stale() -> None:
    cache: Cache = DiscoveryCache(CacheParams(ttl=30.0, max_stale=0.0))
    fill(cache, 0.0)
    assert cache.lookup(KEY, 30.0).freshness is Freshness.MISSING


def test_abandoned_refresh_lets_the_next_caller_lead(cache: Cache) -> None:
    cache.begin_refresh(KEY, 0.0)
    cache.abandon_refresh(KEY)
    assert cache.lookup(KEY, 0.0).error is None
    assert cache.begin_refresh(KEY, 0.0) is RefreshRole.LEAD


def test_invalidate_forgets_entry_and_failure(cache: Cache) -> None:
    fill(cache, 0.0)
    cache.invalidate(KEY)
    assert cache.lookup(KEY, 1.0).freshness is Freshness.MISSING
    assert cache.keys() == []
    assert len(cache) == 0
    assert "entries=0" in repr(cache)


@pytest.mark.parametrize(
    "kwargs", [{"ttl": -1.0}, {"max_stale": float("inf")}, {"failure_hold": -0.1}]
)
def test_invalid_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CacheParams(**kwargs)
