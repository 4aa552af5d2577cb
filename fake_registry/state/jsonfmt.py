"""JSON normalisation exactly as the real (Go) server does it (CONTRACT 1.4).

Rules:
    meta_json / spec_json   parsed as a generic object; anything else (invalid
                            text, an array, ``null``) becomes ``""``; emitted
                            compact, keys sorted, numbers through float64.
    endpoints_json          a JSON array (or ``null``) of endpoint objects;
                            anything else raises :class:`EndpointsError`;
                            emitted with keys ``host``, ``network``,
                            ``priority``; an empty list becomes ``""``.

Go's encoder escapes ``<``, ``>``, ``&``, U+2028 and U+2029, and formats
float64 values in the shortest form that round-trips, switching to exponent
form below 1e-6 and from 1e21 up. Go's decoder rejects ``NaN``/``Infinity``,
numbers that overflow float64, and matches struct keys case-insensitively.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = [
    "Endpoint",
    "EndpointsError",
    "dump_go",
    "normalize_endpoints",
    "normalize_object",
    "parse_endpoints",
]


class EndpointsError(ValueError):
    """``endpoints_json`` is not a valid endpoint array."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One element of ``endpoints_json``."""

    host: str = ""
    network: str = ""
    priority: int = 0


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON literal {name}")


def _go_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number out of float64 range")
    return value


def _clean_surrogates(text: str) -> str:
    # Go decodes a lone surrogate escape (\ud800) to U+FFFD; Python keeps it,
    # and it could not be encoded to UTF-8 for the protobuf reply.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class _GoObject(dict[str, Any]):
    """A decoded object that remembers every key/value pair, duplicates included."""

    pairs: list[tuple[str, Any]]


def _object(items: list[tuple[str, Any]]) -> _GoObject:
    obj = _GoObject((_clean_surrogates(k), v) for k, v in items)  # last duplicate wins
    obj.pairs = items
    return obj


def _loads_go(text: str, *, numbers_as_float: bool) -> Any:
    return json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_go_float,
        parse_int=_go_float if numbers_as_float else int,
        object_pairs_hook=_object,
    )


# Pure functions of their text; clients re-register and beat with the same
# payloads over and over, so the last few thousand results are kept.
_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=_CACHE_SIZE)
def normalize_object(text: str) -> str:
    """Normalise ``meta_json`` / ``spec_json`` text; invalid input gives ``""``."""
    if not text:
        return ""
    try:
        value = _loads_go(text, numbers_as_float=True)
        if not isinstance(value, dict):
            return ""
        return dump_go(value)
    except (ValueError, RecursionError):  # nesting past Python's recursion limit
        return ""


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_endpoints(text: str) -> tuple[Endpoint, ...]:
    """Parse ``endpoints_json``; ``""``, ``"null"`` and ``"[]"`` give ``()``.

    Raises:
        EndpointsError: not an array, or an element or field of the wrong type.
    """
    if not text:
        return ()
    try:
        value = _loads_go(text, numbers_as_float=False)
    except (ValueError, RecursionError) as exc:
        raise EndpointsError(f"endpoints_json is not valid JSON: {exc}") from None
    if value is None:
        return ()
    if not isinstance(value, list):
        raise EndpointsError("endpoints_json must be a JSON array")
    return tuple(_endpoint(i, item) for i, item in enumerate(value))


def _endpoint(index: int, item: Any) -> Endpoint:
    if item is None:
        return Endpoint()
    if not isinstance(item, dict):
        raise EndpointsError(f"endpoints_json[{index}] must be an object")
    fields: dict[str, Any] = {}
    for key, value in item.pairs if isinstance(item, _GoObject) else item.items():
        name = key.casefold()  # Go matches struct fields with Unicode case folding
        if name not in ("host", "network", "priority") or value is None:
            continue
        # Go type-checks every occurrence, so a bad duplicate fails the document.
        if name == "priority":
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not _INT64_MIN <= value <= _INT64_MAX
            ):
                raise EndpointsError(f"endpoints_json[{index}].priority must be an integer")
        elif not isinstance(value, str):
            raise EndpointsError(f"endpoints_json[{index}].{name} must be a string")
        fields[name] = _clean_surrogates(value) if isinstance(value, str) else value
    return Endpoint(
        host=fields.get("host", ""),
        network=fields.get("network", ""),
        priority=fields.get("priority", 0),
    )


@functools.lru_cache(maxsize=_CACHE_SIZE)
def normalize_endpoints(endpoints: tuple[Endpoint, ...]) -> str:
    """Serialise endpoints as the server does; an empty tuple gives ``""``."""
    if not endpoints:
        return ""
    return dump_go(
        [{"host": e.host, "network": e.network, "priority": e.priority} for e in endpoints],
        sort_keys=False,
    )


# --- encoding -------------------------------------------------------------

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04x}")
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def _string(text: str) -> str:
    return '"' + _clean_surrogates(text).translate(_ESCAPE_TABLE) + '"'


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"unsupported value: {value!r}")  # Go's Marshal refuses too
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    text = repr(value)  # the shortest digits that round-trip, as Go picks them
    if magnitude < 1e-6 or magnitude >= 1e21:
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0")  # Go writes e-7, not e-07
        return f"{mantissa.removesuffix('.0')}e{sign}{digits}"
    # Fixed notation with the same shortest digits: 2**60 is 1152921504606847000.
    return format(Decimal(text), "f").removesuffix(".0")


def dump_go(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON the way Go's ``encoding/json`` writes it."""
    out: list[str] = []
    _write(out, value, sort_keys)
    return "".join(out)


def _write(out: list[str], value: Any, sort_keys: bool) -> None:
    # One frame per nesting level (no generator expressions), so documents as
    # deep as the decoder accepts can be written back.
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(_number(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(out, item, sort_keys)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(sorted(value) if sort_keys else value):
            if index:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(out, value[key], sort_keys)
        out.append("}")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")
