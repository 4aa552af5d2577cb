"""Reading the bearer token from call metadata, leniently or strictly (CONTRACT 2.4).

The real server's auth interceptor is lenient; its RenewToken handler is
strict. A lowercase ``bearer`` prefix passes the first and fails the second.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["lenient_token", "strict_token"]

_BEARER = "bearer "


def _first(metadata: Iterable[tuple[str, Any]] | None, key: str) -> str | None:
    for name, value in metadata or ():
        if name == key:
            return value if isinstance(value, str) else None
    return None


def lenient_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """The interceptor's reading: first ``authorization``, else first ``token``;
    a leading ``bearer `` in any case is stripped, a bare token is accepted."""
    items = tuple(metadata or ())
    value = _first(items, "authorization")
    if value is None:
        value = _first(items, "token")
    if value is None:
        return ""
    if value[: len(_BEARER)].lower() == _BEARER:
        value = value[len(_BEARER) :]
    return value


def strict_token(metadata: Iterable[tuple[str, Any]] | None) -> str:
    """RenewToken's reading: only ``authorization``, only an exact ``Bearer ``
    prefix is stripped, then spaces are trimmed."""
    value = _first(metadata, "authorization")
    if value is None:
        return ""
    value = value.removeprefix("Bearer ")
    return value.strip(" ")
