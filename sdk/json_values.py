"""Frozen JSON values: what ``meta`` and ``spec`` hold once the SDK has parsed them.

Objects become :class:`JsonObject` mappings and arrays :class:`JsonArray` tuples, both
immutable and hashable, so one parsed value can be shared by every caller and thread.
Importable from :mod:`sdk.models` too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

#: How many distinct JSON texts the parsers remember (each entry: the text and its value).
PARSED_TEXTS = 4096

__all__ = [
    "EMPTY",
    "PARSED_TEXTS",
    "JsonArray",
    "JsonObject",
    "freeze",
    "parse_object",
    "reject_constant",
    "thaw",
]


class JsonArray(tuple[Any, ...]):
    """A read-only JSON array: a tuple that also equals a list of equal items.

    So ``instance.meta["tags"] == ["a", "b"]`` holds, as it would for the
    parsed JSON, while the value stays immutable and hashable.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            other = tuple(other)
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return f"JsonArray({list(self)!r})"


class JsonObject(Mapping[str, Any]):
    """A read-only, hashable JSON object; equals any mapping with equal items.

    Nested objects and arrays are frozen too (:class:`JsonObject`,
    :class:`JsonArray`), so every value in it is hashable.
    """

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        self._data: dict[str, Any] = {str(k): freeze(v) for k, v in (items or {}).items()}

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __reduce__(self) -> tuple[type[JsonObject], tuple[dict[str, Any]]]:
        return (JsonObject, (self._data,))

    def __repr__(self) -> str:
        return f"JsonObject({self._data!r})"


EMPTY = JsonObject()


def freeze(value: Any) -> Any:
    if isinstance(value, JsonObject | JsonArray):
        return value  # already deep-frozen
    if isinstance(value, Mapping):
        return JsonObject(value)
    if isinstance(value, list | tuple):
        return JsonArray(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN/Infinity: Python accepts them, JSON does not


@functools.lru_cache(maxsize=PARSED_TEXTS)
def parse_object(text: str) -> Mapping[str, Any] | None:
    """A frozen JSON object, or ``None`` for ``""`` and anything not an object.

    Cached by text: the result is deep-frozen, so every caller can share it, and a refresh
    that lists the same instances again parses nothing.
    """
    if not text:
        return None
    try:
        value = json.loads(text, parse_constant=reject_constant)
        return freeze(value) if isinstance(value, dict) else None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
