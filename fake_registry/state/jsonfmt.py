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


def _loads_go(text: str, *, numbers_as_float: bool) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        return {_clean_surrogates(k): v for k, v in items}

    return json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=_go_float,
        parse_int=_go_float if numbers_as_float else int,
        object_pairs_hook=pairs,
    )


def normalize_object(text: str) -> str:
    """Normalise ``meta_json`` / ``spec_json`` text; invalid input gives ``""``."""
    if not text:
        return ""
    try:
        value = _loads_go(text, numbers_as_float=True)
    except (ValueError, RecursionError):
        return ""
    if not isinstance(value, dict):
        return ""
    return dump_go(value)


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
    for key, value in item.items():
        name = key.lower()  # Go matches struct fields case-insensitively
        if name in ("host", "network", "priority"):
            fields[name] = value
    host = fields.get("host")
    network = fields.get("network")
    priority = fields.get("priority")
    for name, text_value in (("host", host), ("network", network)):
        if text_value is not None and not isinstance(text_value, str):
            raise EndpointsError(f"endpoints_json[{index}].{name} must be a string")
    if priority is not None and (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not _INT64_MIN <= priority <= _INT64_MAX
    ):
        raise EndpointsError(f"endpoints_json[{index}].priority must be an integer")
    return Endpoint(
        host=_clean_surrogates(host or ""),
        network=_clean_surrogates(network or ""),
        priority=priority or 0,
    )


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
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    magnitude = abs(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = repr(value)  # shortest round-trip digits, e.g. '1e-07', '1.5e+21'
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0]
        digits = exponent[1:].lstrip("0")  # Go writes e-7, not e-07
        if mantissa.endswith(".0"):
            mantissa = mantissa[:-2]
        return f"{mantissa}e{sign}{digits}"
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def dump_go(value: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON the way Go's ``encoding/json`` writes it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump_go(v, sort_keys=sort_keys) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value) if sort_keys else list(value)
        return (
            "{"
            + ",".join(_string(k) + ":" + dump_go(value[k], sort_keys=sort_keys) for k in keys)
            + "}"
        )
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
