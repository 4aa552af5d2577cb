"""Exponential backoff as an immutable policy value (CONTRACT G4).

Rules:
    ceiling(attempt)   min(maximum, initial * multiplier ** attempt), attempt 0 = first retry
    delay, "full"      rand * ceiling                      (AWS "full jitter")
    delay, "equal"     ceiling / 2 + rand * ceiling / 2     (never less than half the ceiling)
    delay, "none"      ceiling
    cap                an extra, per-call ceiling (a lease uses its heartbeat interval)

The caller supplies ``rand`` in ``[0, 1)``: this module imports no ``random``, so tests pass
exact numbers and shells pass ``random.random()``. Counting attempts, and resetting the
count after a success, is the caller's job: a ``Backoff`` has no state (urllib3's ``Retry``
is the model: policy values, decisions separate from waiting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Backoff", "Jitter"]

Jitter = Literal["full", "equal", "none"]
_JITTERS: frozenset[str] = frozenset({"full", "equal", "none"})


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays that grow by ``multiplier`` from ``initial`` up to ``maximum`` seconds.

    Attributes:
        initial: Ceiling of the first delay (attempt 0). ``0`` means "retry at once".
        multiplier: Growth per attempt; ``1`` keeps the delay constant.
        maximum: Upper bound of every ceiling.
        jitter: ``"full"`` spreads delays over ``[0, ceiling)``, ``"equal"`` over
            ``[ceiling / 2, ceiling)``, ``"none"`` returns the ceiling itself.
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 30.0
    jitter: Jitter = "full"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial) and self.initial >= 0):
            raise ValueError(f"initial must be a finite number >= 0, got {self.initial!r}")
        if not (math.isfinite(self.multiplier) and self.multiplier >= 1):
            raise ValueError(f"multiplier must be a finite number >= 1, got {self.multiplier!r}")
        if not (math.isfinite(self.maximum) and self.maximum >= self.initial):
            raise ValueError(
                f"maximum must be finite and >= initial ({self.initial}), got {self.maximum!r}"
            )
        if self.jitter not in _JITTERS:
            raise ValueError(f"jitter must be one of {sorted(_JITTERS)}, got {self.jitter!r}")

    def ceiling(self, attempt: int, cap: float | None = None) -> float:
        """The largest delay for ``attempt`` (0-based), before jitter.

        Args:
            attempt: How many retries came before this one; negative counts as 0.
            cap: An extra upper bound for this call only (``None``: none).
        """
        limit = self.maximum if cap is None else max(0.0, min(self.maximum, cap))
        if attempt <= 0:
            return min(self.initial, limit)
        try:
            grown = self.initial * self.multiplier**attempt
        except OverflowError:  # a float power past ~1e308: the ceiling is long saturated
            return limit
        return min(grown, limit)

    def delay(self, attempt: int, rand: float, cap: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based).

        Args:
            attempt: How many retries came before this one.
            rand: A uniform random number in ``[0, 1)`` from the caller.
            cap: An extra upper bound for this call only (``None``: none).

        Raises:
            ValueError: ``rand`` is outside ``[0, 1)``.
        """
        if not 0.0 <= rand < 1.0:
            raise ValueError(f"rand must be in [0, 1), got {rand!r}")
        top = self.ceiling(attempt, cap)
        if self.jitter == "full":
            return rand * top
        if self.jitter == "equal":
            return top / 2 + rand * top / 2
        return top
