"""RoundRobin: order, skipping, outcomes, position across refreshes (CONTRACT 4.6, G11)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from hypothesis import given
from hypothesis import strategies as st

from sdk._core.balancer import NoPick, RoundRobin

KEYS = ("a", "b", "c", "d")


def picks(
    rr: RoundRobin[str], keys: Sequence[str], n: int, usable: Callable[[str], bool] | None = None
) -> list[str]:
    out = []
    for _ in range(n):
        index = rr.pick(keys, usable)
        assert isinstance(index, int)
        out.append(keys[index])
    return out


def test_rotates_in_order() -> None:
    rr: RoundRobin[str] = RoundRobin()
    assert picks(rr, KEYS, 6) == ["a", "b", "c", "d", "a", "b"]
    assert rr.last_key == "b"


def test_skips_unusable_keys_lazily() -> None:
    rr: RoundRobin[str] = RoundRobin()
    cooling = {"b", "c"}
    assert picks(rr, KEYS, 4, lambda k: k not in cooling) == ["a", "d", "a", "d"]


def test_outcomes_are_values() -> None:
    rr: RoundRobin[str] = RoundRobin()
    assert rr.pick(()) is NoPick.NO_INSTANCES
    assert rr.pick(KEYS, lambda k: False) is NoPick.ALL_COOLING
    assert rr.last_key is None


def test_all_cooling_does_not_move_the_position() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, KEYS, 2)  # a, b
    assert rr.pick(KEYS, lambda k: False) is NoPick.ALL_COOLING
    assert picks(rr, KEYS, 1) == ["c"]


def test_refresh_continues_after_the_last_picked_key() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, KEYS, 2)  # a, b
    refreshed = ("x", "a", "b", "c", "d")  # a new instance in front
    assert picks(rr, refreshed, 3) == ["c", "d", "x"]


def test_refresh_without_the_last_key_keeps_its_index() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, KEYS, 2)  # a, b; b sat at index 1
    assert picks(rr, ("a", "c", "d"), 2) == ["c", "d"]  # index 1 is now b's successor


def test_refresh_to_shorter_list_wraps() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, KEYS, 4)  # ... d at index 3, gone below
    assert picks(rr, ("a", "b"), 2) == ["b", "a"]  # 3 % 2


def test_equal_but_new_sequence_keeps_the_position() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, list(KEYS), 1)
    assert picks(rr, list(KEYS), 1) == ["b"]


def test_empty_refresh_then_back() -> None:
    rr: RoundRobin[str] = RoundRobin()
    picks(rr, KEYS, 2)
    assert rr.pick(()) is NoPick.NO_INSTANCES
    assert picks(rr, KEYS, 1) == ["c"]  # the bare index survives an empty spell


def test_never_resets_to_zero_on_refresh() -> None:
    rr: RoundRobin[str] = RoundRobin()
    seen = Counter(picks(rr, KEYS, 3))
    for _ in range(5):  # a refresh (new tuple, same content) before every pick
        seen.update(picks(rr, tuple(KEYS), 1))
    assert seen == Counter({"a": 2, "b": 2, "c": 2, "d": 2})


@given(
    n=st.integers(1, 40),
    rounds=st.integers(1, 5),
    cooling=st.sets(st.integers(0, 39)),
    start=st.integers(0, 100),
)
def test_fairness_each_usable_key_k_times_in_k_rounds(
    n: int, rounds: int, cooling: set[int], start: int
) -> None:
    keys = tuple(range(n))
    usable_keys = [k for k in keys if k not in cooling]
    rr: RoundRobin[int] = RoundRobin()
    for _ in range(start % (n + 1)):  # start anywhere
        rr.pick(keys)
    usable = (lambda k: k not in cooling) if cooling else None
    counts: Counter[int] = Counter()
    for _ in range(rounds * len(usable_keys)):
        index = rr.pick(keys, usable)
        assert isinstance(index, int)
        counts[keys[index]] += 1
    assert counts == Counter(dict.fromkeys(usable_keys, rounds))
    if not usable_keys:
        assert rr.pick(keys, usable) is NoPick.ALL_COOLING


def test_thousand_instances_common_path_calls_the_predicate_once() -> None:
    keys = tuple((7, f"i{n}") for n in range(1_000))
    calls = 0

    def usable(key: tuple[int, str]) -> bool:
        nonlocal calls
        calls += 1
        return True

    rr: RoundRobin[tuple[int, str]] = RoundRobin()
    for _ in range(2_000):
        rr.pick(keys, usable)
    assert calls == 2_000  # O(1) per pick: no scan when the next key is usable
