"""Control-plane messages to and from the fake's values.

To messages: :func:`call_info` (a journaled call, values as received,
unredacted: the control client redacts when it prints), :func:`stream_info`
(an open stream) and :func:`fake_error` (an error raised inside the fake).
From messages: :func:`fault_action` (a ``FaultAction``, the fault rule action
it describes) and :func:`seed_services` (a ``SeedRequest``'s JSON text).
Invalid input raises :class:`~fake_registry.errors.InvalidArgument` naming the field.
"""

from __future__ import annotations

import base64
import json
import traceback
from typing import Any

from google.protobuf.message import Message
from google.protobuf.text_format import MessageToString

from fake_registry.call_record import Call
from fake_registry.errors import InvalidArgument
from fake_registry.faults import Abort, Action, Delay, Drop
from fake_registry.streams import StreamInfo
from protos.fakecontrol.v1 import control_pb2 as pb

__all__ = ["call_info", "fake_error", "fault_action", "seed_services", "stream_info"]


def _text(message: Message | None) -> str:
    return "" if message is None else MessageToString(message, as_one_line=True)


def _metadata_value(value: Any) -> str:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else str(value)


def call_info(call: Call) -> pb.CallInfo:
    """A journal entry as a protobuf message (values as received, unredacted)."""
    return pb.CallInfo(
        seq=call.seq,
        method=call.method,
        metadata=[pb.MetadataEntry(key=k, value=_metadata_value(v)) for k, v in call.metadata],
        request=_text(call.request),
        response=_text(call.response),
        code=call.code or "",
        details=call.details,
        started_at=call.started_at,
        ended_at=call.ended_at or 0.0,
        started_real=call.started_real,
        ended_real=call.ended_real or 0.0,
        frames=[
            pb.Frame(
                direction=f.direction,
                message=_text(f.message),
                virtual_time=f.virtual_time,
                real_time=f.real_time,
            )
            for f in call.frames
        ],
        faults=[
            pb.FaultEvent(rule=e.rule, action=e.action, virtual_time=e.virtual_time)
            for e in call.faults
        ],
    )


def fault_action(message: pb.FaultAction) -> Action:
    """The fault action a ``FaultAction`` message describes (an abort, a drop or a delay)."""
    if message.code:
        return Abort(
            message.code.upper(),
            message.details or "injected fault",
            message.delay_seconds,
            virtual=not message.real_time,
        )
    if message.drop:
        return Drop()
    return Delay(message.delay_seconds, virtual=not message.real_time)


def stream_info(stream: StreamInfo) -> pb.StreamInfo:
    """An open stream as a protobuf message."""
    return pb.StreamInfo(
        id=stream.id,
        method=stream.method,
        instance_keys=stream.instance_keys,
        opened_at=stream.opened_at,
        frames_in=stream.frames_in,
        frames_out=stream.frames_out,
    )


def fake_error(error: BaseException) -> pb.FakeError:
    """An error raised inside the fake, with its traceback, as a protobuf message."""
    return pb.FakeError(
        type=type(error).__name__,
        message=str(error),
        traceback="".join(traceback.format_exception(error)),
    )


def seed_services(json_text: str) -> list[Any]:
    """The services of a seed sent as JSON: a list of services or ``{"services": [...]}``.

    Raises:
        InvalidArgument: on field ``json``, for invalid JSON or another shape.
    """
    try:
        document = json.loads(json_text)
    except ValueError as exc:
        raise InvalidArgument(f"json is not valid JSON: {exc}", "json") from None
    services = document.get("services") if isinstance(document, dict) else document
    if not isinstance(services, list):
        raise InvalidArgument("json must be a list of services or {services: [...]}", "json")
    return services
