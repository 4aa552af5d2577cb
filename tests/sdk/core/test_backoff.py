"""Backoff: ceilings, the three jitters, caps and bounds (CONTRACT G4)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk._core.backoff import Backoff

ALMOST_ONE = 0.999_999


def test_defaults_are_the_contract_schedule() -> None:
    backoff = Backoff(jitter="none")
    assert [backoff.delay(n, 0.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("jitter", "rand", "expected"),
    [
        ("full", 0.0, 0.0),
        ("full", 0.5, 2.0),
        ("equal", 0.0, 2.0),
        ("equal", 0.5, 3.0),
        ("none", 0.0, 4.0),
        ("none", 0.9, 4.0),
    ],
)
def test_jitter_spreads_the_ceiling(jitter: str, rand: float, expected: float) -> None:
    backoff = Backoff(jitter=jitter)  # type: ignore[arg-type]
    assert backoff.delay(2, rand) == pytest.approx(expected)


def test_cap_bounds_one_call_only() -> None:
    backoff = Backoff(jitter="none")
    assert backoff.delay(4, 0.0, cap=3.0) == 3.0
    assert backoff.delay(4, 0.0) == 16.0
    assert backoff.delay(0, 0.0, cap=5.0) == 1.0
    assert backoff.ceiling(9, cap=-1.0) == 0.0


def test_negative_attempt_counts_as_first() -> None:
    assert Backoff(jitter="none").delay(-3, 0.0) == 1.0


def test_huge_attempts_saturate_instead_of_overflowing() -> None:
    assert Backoff(jitter="none").delay(10_000, 0.0) == 30.0


def test_multiplier_one_is_constant() -> None:
    backoff = Backoff(initial=2.0, multiplier=1.0, maximum=2.0, jitter="none")
    assert {backoff.delay(n, 0.0) for n in range(50)} == {2.0}


@pytest.mark.parametrize("rand", [-0.1, 1.0, 1.5, float("nan")])
def test_rand_outside_unit_interval_is_refused(rand: float) -> None:
    with pytest.raises(ValueError, match="rand"):
        Backoff().delay(0, rand)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": -1.0},
        {"initial": float("inf")},
        {"multiplier": 0.5},
        {"maximum": 0.5},
        {"maximum": float("nan")},
        {"jitter": "decorrelated"},
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each field names itself in the message
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_is_an_immutable_value() -> None:
    backoff = Backoff()
    with pytest.raises(dataclasses.FrozenInstanceError):
        backoff.initial = 5.0  # type: ignore[misc]
    assert backoff == Backoff()
    assert hash(backoff) == hash(Backoff())


@given(
    initial=st.floats(0.0, 10.0),
    multiplier=st.floats(1.0, 4.0),
    extra=st.floats(0.0, 100.0),
    attempt=st.integers(0, 2_000),
    rand=st.floats(0.0, ALMOST_ONE),
    jitter=st.sampled_from(["full", "equal", "none"]),
)
def test_delay_stays_within_its_bounds(
    initial: float, multiplier: float, extra: float, attempt: int, rand: float, jitter: str
) -> None:
    backoff = Backoff(initial, multiplier, initial + extra, jitter)  # type: ignore[arg-type]
    ceiling = backoff.ceiling(attempt)
    delay = backoff.delay(attempt, rand)
    assert 0.0 <= delay <= ceiling <= backoff.maximum
    if jitter == "equal":
        assert delay >= ceiling / 2
    if jitter == "none":
        assert delay == ceiling


@given(attempt=st.integers(0, 200), initial=st.floats(0.01, 5.0))
def test_ceilings_never_shrink(attempt: int, initial: float) -> None:
    backoff = Backoff(initial=initial, maximum=60.0)
    assert backoff.ceiling(attempt) <= backoff.ceiling(attempt + 1)
