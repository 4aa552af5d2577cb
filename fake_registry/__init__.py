"""An in-memory fake of the AIO service registry and its client-auth server.

It speaks the real wire contract (``protos``) with the real semantics, in
process (:class:`FakeRegistry`) or standalone (``python -m fake_registry``).
"""

from __future__ import annotations

from fake_registry.clock import Clock, ManualClock, OffsetClock, SystemClock
from fake_registry.errors import (
    FakeRegistryError,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from fake_registry.fake import DEFAULT_CLIENTS, FakeRegistry
from fake_registry.state.model import InstanceRecord, ServiceRecord

__all__ = [
    "DEFAULT_CLIENTS",
    "Clock",
    "FakeRegistry",
    "FakeRegistryError",
    "InstanceRecord",
    "Internal",
    "InvalidArgument",
    "ManualClock",
    "NotFound",
    "OffsetClock",
    "PermissionDenied",
    "ServiceRecord",
    "SystemClock",
    "Unauthenticated",
]
