"""Cooldowns: escalation, success clears, prune, bound (CONTRACT 4.6, G10)."""

from __future__ import annotations

import pytest

from sdk._core.cooldown import CooldownParams, Cooldowns, FailureRecord

A = (1, "a")
B = (1, "b")
SAME_KEY_OTHER_SERVICE = (2, "a")


@pytest.fixture
def cd() -> Cooldowns[tuple[int, str]]:
    return Cooldowns()


def test_first_failure_cools_for_the_base(cd: Cooldowns[tuple[int, str]]) -> None:
    assert cd.record_failure(A, 100.0) == 130.0
    assert cd.is_cooling(A, 100.0)
    assert cd.is_cooling(A, 129.999)
    assert not cd.is_cooling(A, 130.0)
    assert not cd.is_cooling(B, 100.0)


def test_keys_are_per_service(cd: Cooldowns[tuple[int, str]]) -> None:
    cd.record_failure(A, 0.0)
    assert not cd.is_cooling(SAME_KEY_OTHER_SERVICE, 1.0)


def test_consecutive_cooldowns_escalate_up_to_the_maximum(
    cd: Cooldowns[tuple[int, str]],
) -> None:
    now, lengths = 0.0, []
    for _ in range(7):
        until = cd.record_failure(A, now)
        lengths.append(until - now)
        now = until  # tried again as soon as it is usable, and fails again
    assert lengths == [30, 60, 120, 240, 300, 300, 300]
    assert cd.record(A) == FailureRecord(level=7, until=now, failures=7, last_failure_at=now - 300)


def test_failures_while_cooling_neither_extend_nor_escalate(
    cd: Cooldowns[tuple[int, str]],
) -> None:
    cd.record_failure(A, 0.0)
    for t in (1.0, 2.0, 29.0):  # calls that were in flight when the first failed
        assert cd.record_failure(A, t) == 30.0
    record = cd.record(A)
    assert record is not None
    assert (record.level, record.failures, record.last_failure_at) == (1, 4, 29.0)
    assert cd.record_failure(A, 30.0) == 90.0  # the next cooldown escalates


def test_success_clears_the_record(cd: Cooldowns[tuple[int, str]]) -> None:
    cd.record_failure(A, 0.0)
    cd.record_failure(A, 30.0)
    assert cd.record_success(A)
    assert not cd.record_success(A)
    assert not cd.is_cooling(A, 31.0)
    assert cd.record_failure(A, 31.0) == 61.0  # back to the base length


def test_a_long_quiet_spell_restarts_escalation(cd: Cooldowns[tuple[int, str]]) -> None:
    cd.record_failure(A, 0.0)  # until 30
    assert cd.record_failure(A, 30.0 + 299.0) == 329.0 + 60.0  # still escalates
    assert cd.record_failure(A, 389.0 + 300.0) == 689.0 + 30.0  # quiet for `maximum`: level 1


def test_prune_drops_vanished_instances(cd: Cooldowns[tuple[int, str]]) -> None:
    cd.record_failure(A, 0.0)
    cd.record_failure(B, 0.0)
    assert cd.prune({B, (1, "c")}) == 1
    assert cd.record(A) is None
    assert cd.is_cooling(B, 1.0)
    assert cd.prune(set()) == 1
    assert len(cd) == 0


def test_memory_is_bounded_least_recently_failed_first() -> None:
    cd: Cooldowns[int] = Cooldowns(CooldownParams(max_records=3))
    for key in (1, 2, 3):
        cd.record_failure(key, 0.0)
    cd.record_failure(1, 1.0)  # 1 is now the most recent
    cd.record_failure(4, 2.0)
    assert len(cd) == 3
    assert cd.record(2) is None
    assert all(cd.record(k) is not None for k in (1, 3, 4))


def test_available_predicate(cd: Cooldowns[tuple[int, str]]) -> None:
    assert cd.available(0.0) is None  # nothing recorded: the balancer's fast path
    cd.record_failure(A, 0.0)
    usable = cd.available(10.0)
    assert usable is not None
    assert not usable(A)
    assert usable(B)
    later = cd.available(30.0)
    assert later is not None
    assert later(A)


def test_custom_params_and_no_escalation() -> None:
    cd: Cooldowns[str] = Cooldowns(CooldownParams(base=5.0, multiplier=1.0, maximum=5.0))
    assert cd.record_failure("x", 0.0) == 5.0
    assert cd.record_failure("x", 5.0) == 10.0


def test_clear_and_repr(cd: Cooldowns[tuple[int, str]]) -> None:
    cd.record_failure(A, 0.0)
    assert "records=1" in repr(cd)
    cd.clear()
    assert len(cd) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"base": -1.0}, {"multiplier": 0.9}, {"maximum": 10.0}, {"max_records": 0}],
)
def test_invalid_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each field names itself in the message
        CooldownParams(**kwargs)  # type: ignore[arg-type]


def test_duration_saturates() -> None:
    assert CooldownParams().duration(100_000) == 300.0
