"""Keeping tokens and secrets out of reprs, messages and printed output.

``authorization`` and ``token`` metadata values, and the ``client_secret``
and ``access_token`` fields of messages, show as ``<redacted>``. Only the
displayed text is redacted: the journal keeps the real values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message
from google.protobuf.text_format import MessageToString

__all__ = ["SECRET_FIELDS", "SECRET_METADATA", "describe_message", "redact_metadata"]

#: Metadata keys whose values are secrets.
SECRET_METADATA = frozenset({"authorization", "token"})
#: Message fields whose values are secrets.
SECRET_FIELDS = ("client_secret", "access_token")


def redact_metadata(metadata: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    """Metadata with token-bearing values replaced by ``<redacted>``."""
    return tuple(
        (key, "<redacted>" if key in SECRET_METADATA else value) for key, value in metadata
    )


def describe_message(message: Message | None) -> str:
    """A one-line text form of ``message`` with secret fields redacted."""
    if message is None:
        return "-"
    present = {f.name for f, _ in message.ListFields()}
    hidden = [name for name in SECRET_FIELDS if name in present]
    if hidden:
        copy = type(message)()
        copy.CopyFrom(message)
        for name in hidden:
            setattr(copy, name, "<redacted>")
        message = copy
    return "{" + MessageToString(message, as_one_line=True) + "}"
