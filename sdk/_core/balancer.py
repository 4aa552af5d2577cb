"""Round-robin over the healthy instances of one service (CONTRACT 4.6, G11).

Rules:
    pick, all usable            the instance after the last pick, wrapping around
    pick, some unusable         skip them lazily, starting from there: no scan on the common path
    pick, none usable           NoPick.ALL_COOLING (the position does not move)
    pick, empty list            NoPick.NO_INSTANCES
    new instance list           continue after the last picked key if it is still listed,
                                else at the last picked index modulo the new length;
                                never back to 0 (the Go SDK reset the index on every refresh)

"New list" means a different sequence *object*: hand the same immutable tuple to ``pick``
until discovery replaces it, and the per-pick cost stays O(1) (the rebase is O(n) once per
refresh). Outcomes are values, not exceptions: the shell maps ``NoPick`` to its errors.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

__all__ = ["NoPick", "RoundRobin"]

K = TypeVar("K", bound=Hashable)


class NoPick(enum.Enum):
    """Why ``pick`` chose nothing."""

    NO_INSTANCES = "no_instances"
    ALL_COOLING = "all_cooling"


class RoundRobin(Generic[K]):
    """The round-robin position of one service; keep one per service across refreshes.

    Not thread-safe: the shell calls it under its lock (a pick is well under a microsecond).
    """

    __slots__ = ("_keys", "_last", "_next")

    def __init__(self) -> None:
        self._keys: Sequence[K] = ()
        self._next = 0  # index to try first on the next pick
        self._last = -1  # index of the last picked key in self._keys; -1 = none yet

    def __repr__(self) -> str:
        return f"RoundRobin(size={len(self._keys)}, next={self._next})"

    @property
    def last_key(self) -> K | None:
        """The key chosen by the latest successful pick, if any."""
        return self._keys[self._last] if 0 <= self._last < len(self._keys) else None

    def pick(self, keys: Sequence[K], usable: Callable[[K], bool] | None = None) -> int | NoPick:
        """Choose the next instance.

        Args:
            keys: Instance keys in a stable order (sort them: the server's order is
                unspecified). Pass the same object while the list is unchanged.
            usable: Returns ``False`` for keys to skip (cooling down); ``None`` means all
                are usable, and is the fast path.

        Returns:
            The index into ``keys`` of the chosen instance, or a ``NoPick`` reason.
        """
        if keys is not self._keys:
            self._rebase(keys)
        n = len(keys)
        if n == 0:
            return NoPick.NO_INSTANCES
        i = self._next
        if i >= n:
            i = 0
        if usable is None or usable(keys[i]):
            self._next = i + 1
            self._last = i
            return i
        for step in range(1, n):
            j = i + step
            if j >= n:
                j -= n
            if usable(keys[j]):
                self._next = j + 1
                self._last = j
                return j
        return NoPick.ALL_COOLING

    def _rebase(self, keys: Sequence[K]) -> None:
        """Carry the position over to a new instance list."""
        old, last = self._keys, self._last
        self._keys = keys
        if not 0 <= last < len(old) or not keys:
            # Nothing picked yet, or nothing to pick from: keep the bare index.
            self._next = self._next % len(keys) if keys else self._next
            return
        try:
            found = keys.index(old[last])
        except ValueError:
            # The last picked instance is gone: whatever now sits at its index is "next".
            self._next = last % len(keys)
            self._last = -1
        else:
            self._next = found + 1
            self._last = found
