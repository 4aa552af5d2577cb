"""Fault rules: which calls, what happens to them, for how long.

A rule matches calls by method (see :func:`~fake_registry.call_record.method_matches`)
and optionally by metadata. Each matching call takes the rule's next action:

    Abort(code, details)   the call ends with that status before the handler runs
    Delay(seconds, virtual) the call waits, then proceeds normally; a virtual
                           delay ends when the fake's clock has moved that far
    Drop()                 the call never answers; the client hits its deadline

Lifetimes: ``times=None`` fires on every match (always), ``times=N`` on the
next N matches, a ``sequence`` of actions fires them in order, one per match,
and ends after the last; ``probability`` (with a ``seed``, for repeatable runs)
makes each match fire only with that chance. A rule whose lifetime is over
stays listed with ``active == False`` until removed.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from fake_registry.call_record import method_matches
from fake_registry.errors import InvalidArgument

__all__ = ["Abort", "Action", "Delay", "Drop", "FaultRule", "FaultSet"]

#: Status codes a fault may inject (OK is not a fault).
FAULT_CODES = frozenset(
    {
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)


def check_code(code: Any, field_name: str = "code") -> str:
    """Normalise a status code (``"unavailable"`` or ``grpc.StatusCode.UNAVAILABLE``
    -> ``"UNAVAILABLE"``)."""
    code = getattr(code, "name", code)
    name = code.upper() if isinstance(code, str) else ""
    if name not in FAULT_CODES:
        raise InvalidArgument(
            f"{field_name} must be a non-OK gRPC status code name (got {code!r})", field_name
        )
    return name


@dataclass(frozen=True, slots=True)
class Abort:
    """End the call with ``code``; after ``delay`` seconds when given."""

    code: str
    details: str = "injected fault"
    delay: float = 0.0
    virtual: bool = True

    def describe(self) -> str:
        if self.delay:
            return (
                f"abort {self.code} after {self.delay:g}s {'virtual' if self.virtual else 'real'}"
            )
        return f"abort {self.code}"


@dataclass(frozen=True, slots=True)
class Delay:
    seconds: float
    virtual: bool = True

    def describe(self) -> str:
        kind = "virtual" if self.virtual else "real"
        return f"delay {self.seconds:g}s {kind}"


@dataclass(frozen=True, slots=True)
class Drop:
    def describe(self) -> str:
        return "drop"


Action = Abort | Delay | Drop


@dataclass(eq=False)
class FaultRule:
    """One rule. Mutated only by :class:`FaultSet` under its lock."""

    id: int
    method: str
    actions: tuple[Action, ...]
    times: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    probability: float = 1.0
    seed: int | None = None
    sequence: bool = False
    hits: int = 0
    removed: bool = False
    _random: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)  # noqa: S311 - test faults, not crypto

    @property
    def name(self) -> str:
        return f"fault#{self.id}"

    @property
    def active(self) -> bool:
        if self.removed:
            return False
        if self.sequence:
            return self.hits < len(self.actions)
        return self.times is None or self.hits < self.times

    def _matches(self, method: str, metadata: Sequence[tuple[str, Any]]) -> bool:
        if not method_matches(self.method, method):
            return False
        for key, expected in self.metadata.items():
            if next((v for k, v in metadata if k == key), None) != expected:
                return False
        return True

    def describe(self) -> str:
        actions = ", ".join(a.describe() for a in self.actions)
        lifetime = (
            "sequence"
            if self.sequence
            else ("always" if self.times is None else f"{self.times} time(s)")
        )
        chance = "" if self.probability >= 1 else f", p={self.probability:g}"
        return f"{self.name} {self.method}: {actions} ({lifetime}{chance}, hits={self.hits})"


class FaultSet:
    """The fake's rules, consulted once per call by the call pipeline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        # Per method, the rules whose method pattern names it (rebuilt on change):
        # a call no rule names costs one dict lookup, however many rules exist.
        self._by_method: dict[str, tuple[FaultRule, ...]] = {}
        self._next_id = 1

    def add(
        self,
        method: str,
        actions: Sequence[Action],
        *,
        times: int | None = None,
        sequence: bool = False,
        metadata: Mapping[str, str] | None = None,
        probability: float = 1.0,
        seed: int | None = None,
    ) -> FaultRule:
        if not method:
            raise InvalidArgument("method must name a method or be '*'", "method")
        if not actions:
            raise InvalidArgument("a fault needs at least one action", "action")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise InvalidArgument(f"times must be >= 1 or None (got {times!r})", "times")
        if not 0.0 < probability <= 1.0:
            raise InvalidArgument(
                f"probability must be in (0, 1] (got {probability!r})", "probability"
            )
        normalised: list[Action] = []
        for action in actions:
            seconds = action.seconds if isinstance(action, Delay) else 0.0
            if isinstance(action, Abort):
                # Abort("unavailable") would otherwise fail only when it fires.
                action = replace(action, code=check_code(action.code))
                seconds = action.delay
            if not seconds >= 0:
                raise InvalidArgument(f"delay seconds must be >= 0 (got {seconds!r})", "delay")
            normalised.append(action)
        with self._lock:
            rule = FaultRule(
                id=self._next_id,
                method=method,
                actions=tuple(normalised),
                times=times,
                metadata=dict(metadata or {}),
                probability=probability,
                seed=seed,
                sequence=sequence,
            )
            self._next_id += 1
            self._rules.append(rule)
            self._by_method = {}
        return rule

    def remove(self, rule_id: int) -> bool:
        with self._lock:
            for rule in self._rules:
                if rule.id == rule_id:
                    rule.removed = True
                    self._rules.remove(rule)
                    self._by_method = {}
                    return True
        return False

    def clear(self) -> None:
        with self._lock:
            for rule in self._rules:
                rule.removed = True
            self._rules.clear()
            self._by_method = {}

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def take(
        self, method: str, metadata: Sequence[tuple[str, Any]]
    ) -> tuple[FaultRule, Action] | None:
        """The action the first active matching rule applies to this call, if any.

        Consumes one use of that rule's lifetime. Rules are tried in the order
        they were added; a probabilistic rule that does not fire lets later
        rules try.
        """
        if not self._rules:  # the common case: no lock, no work
            return None
        with self._lock:
            candidates = self._by_method.get(method)
            if candidates is None:
                candidates = tuple(r for r in self._rules if method_matches(r.method, method))
                self._by_method[method] = candidates
            for rule in candidates:
                if not rule.active or not rule._matches(method, metadata):
                    continue
                if rule.probability < 1.0 and rule._random.random() >= rule.probability:
                    continue
                action = rule.actions[rule.hits] if rule.sequence else rule.actions[0]
                rule.hits += 1
                return rule, action
        return None
