"""Validation shared by the configuration values: a bad value raises ``ConfigError(field)``."""

from __future__ import annotations

import math

from sdk.errors import ConfigError

__all__ = ["number", "text"]


def number(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> float:
    # bool is an int: True would silently mean 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ConfigError(name, "must be finite")
    if value < minimum or (strict and value == minimum):
        raise ConfigError(name, f"must be {'>' if strict else '>='} {minimum:g} (got {value!r})")
    return float(value)


def text(name: str, value: object, *, secret: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ConfigError(name, "must not be empty")
    if value != value.strip():
        # A trailing newline from a secrets file is the classic cause of a
        # baffling UNAUTHENTICATED; say so here, without echoing a secret.
        shown = "" if secret else f" ({value!r})"
        raise ConfigError(name, f"has leading or trailing whitespace{shown}")
    return value
