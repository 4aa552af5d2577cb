"""How ``fake-registry ctl`` prints results: times, method names, journaled calls.

Journaled calls print as one summary line each, or as one JSON object per
line with ``--json``. Tokens and secrets in them (metadata values and message
fields) show as ``<redacted>`` unless ``--show-secrets`` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
from collections.abc import Iterator

from fake_registry.redaction import SECRET_FIELDS, redact_metadata
from protos.fakecontrol.v1 import control_pb2 as pb

__all__ = ["calls_output", "iso", "short_method", "time_line"]


def iso(unix: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds, e.g. ``2024-01-01T00:00:00.000Z``."""
    moment = datetime.datetime.fromtimestamp(unix, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def time_line(unix: float) -> str:
    """``now 1700000000.000 (2023-11-14T22:13:20.000Z)``."""
    return f"now {unix:.3f} ({iso(unix)})"


def short_method(method: str) -> str:
    """``/pkg.v1.RegistryService/ListServices`` -> ``RegistryService/ListServices``."""
    service, _, name = method.lstrip("/").rpartition("/")
    return f"{service.rpartition('.')[2]}/{name}" if service else name


_SECRET_TEXT = re.compile(r"\b(" + "|".join(SECRET_FIELDS) + r')(: )"(?:[^"\\]|\\.)*"')


def _text(text: str, show: bool) -> str:
    return text if show else _SECRET_TEXT.sub(r'\1\2"<redacted>"', text)


def _call_json(call: pb.CallInfo, show: bool) -> str:
    metadata = [(m.key, m.value) for m in call.metadata]
    entry = {
        "seq": call.seq,
        "method": call.method,
        "code": call.code or None,
        "details": call.details,
        "metadata": [list(kv) for kv in (metadata if show else redact_metadata(metadata))],
        "request": _text(call.request, show),
        "response": _text(call.response, show),
        "started_at": call.started_at,
        "ended_at": call.ended_at or None,
        "started_real": call.started_real,
        "ended_real": call.ended_real or None,
        "frames": [
            {
                "direction": f.direction,
                "message": _text(f.message, show),
                "virtual_time": f.virtual_time,
                "real_time": f.real_time,
            }
            for f in call.frames
        ],
        "faults": [
            {"rule": e.rule, "action": e.action, "virtual_time": e.virtual_time}
            for e in call.faults
        ],
    }
    return json.dumps(entry, separators=(",", ":"))


def _call_line(call: pb.CallInfo) -> str:
    line = f"{call.seq} {short_method(call.method)} {call.code or 'in-flight'}"
    if call.details and call.code != "OK":
        line += f" {call.details!r}"
    if call.frames:
        line += f" frames={len(call.frames)}"
    if call.faults:
        line += f" faults=[{', '.join(e.action for e in call.faults)}]"
    return line


def calls_output(calls: list[pb.CallInfo], args: argparse.Namespace) -> Iterator[str]:
    """The lines for ``calls``: JSON with ``args.json``, summaries otherwise."""
    for call in calls:
        yield _call_json(call, args.show_secrets) if args.json else _call_line(call)
