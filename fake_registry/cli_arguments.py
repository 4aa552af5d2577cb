"""Argument types of the ``fake-registry`` commands (``serve``, ``ctl``, ``health``).

Each turns one command-line string into a value or raises
:class:`argparse.ArgumentTypeError`, which argparse reports as a usage error
naming the argument. Messages never echo a value that may hold a secret.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from fake_registry.control import code_name
from fake_registry.errors import FakeRegistryError

__all__ = [
    "client_credential",
    "count",
    "expiry",
    "int_in",
    "key_value",
    "number",
    "on_off",
    "positive_id",
    "positive_seconds",
    "probability",
    "seconds",
    "status_code",
    "target",
]


def client_credential(text: str) -> tuple[str, str]:
    """``KEY:SECRET`` -> ``(key, secret)``, both non-empty."""
    key, sep, secret = text.partition(":")
    if not sep or not key or not secret:
        raise argparse.ArgumentTypeError("expected KEY:SECRET with a non-empty key and secret")
    return key, secret


def int_in(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An integer in ``low..high`` (``high`` ``None``: no upper bound), described as ``what``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what} (got {value})")
        return value

    return parse


def number(low: float, *, strict: bool = False) -> Callable[[str], float]:
    """A finite number ``>= low`` (``> low`` when ``strict``)."""
    what = f"a number {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return value

    return parse


def probability(text: str) -> float:
    """A number in ``(0, 1]``."""
    value = number(0.0, strict=True)(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1] (got {text!r})")
    return value


def status_code(text: str) -> str:
    """A non-OK gRPC status code name, normalised (``unavailable`` -> ``UNAVAILABLE``)."""
    try:
        return code_name(text)
    except FakeRegistryError:
        raise argparse.ArgumentTypeError(
            f"must be a non-OK gRPC status code name such as UNAVAILABLE (got {text!r})"
        ) from None


def expiry(text: str) -> float | None:
    """Unix seconds ``> 0``, or ``never`` (``None``)."""
    return None if text == "never" else number(0.0, strict=True)(text)


def key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(key, value)``; the value may be empty."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    return key, value


def target(text: str) -> str:
    """``HOST:PORT``, or a gRPC target URI (``dns:///...``, ``unix:...``), unchanged."""
    if ":/" in text or text.startswith(("unix:", "unix-abstract:")):  # a gRPC target URI
        return text
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (got {text!r})")
    return text


def on_off(text: str) -> bool:
    """``on`` -> ``True``, ``off`` -> ``False``."""
    if text not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"must be on or off (got {text!r})")
    return text == "on"


seconds = number(0.0)
positive_seconds = number(0.0, strict=True)
count = int_in(1, 2**31 - 1, "an integer >= 1")
positive_id = int_in(1, 2**63 - 1, "a positive integer")
